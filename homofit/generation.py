"""What translation, summarization and dialogue share: the backbone, prompts, loss masking, generation
(LanguageModelHead), and the task side of scoring and reporting (GenerationTask, which the three task
modules subclass). It sits beside `homofit/tasks/` because `tasks/` keeps one module per registered family.

Two layouts of one example:
- seq2seq (an encoder-decoder, also BERT2BERT): the encoder reads the source, `labels` hold the target.
- causal (a decoder-only LM): `input_ids` are prompt + target + end token; `labels` are -100 on the prompt,
  so the loss falls on the target tokens alone. `prompt_input_ids`, left-padded, are what generation starts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.config import StrictModel
from homofit.data.windows import IGNORE_INDEX
from homofit.errors import HomofitError
from homofit.heads import Head
from homofit.tasks import Task

if TYPE_CHECKING:
    import torch
    from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import DataConfig, ModelConfig
    from homofit.outcomes import Outcomes

# Encoder-only families: with backbone 'auto' they are warm-started as BERT2BERT (Rothe et al., 2020).
ENCODER_ONLY_TYPES = {"bert", "roberta", "xlm-roberta", "electra", "distilbert", "albert", "mpnet", "deberta",
                      "deberta-v2", "camembert"}
PLACEHOLDER = "\x00homofit-body\x00"

Layout = Literal["seq2seq", "causal"]


class GenerationSettings(StrictModel):
    """Every setting `generate` gets; nothing is taken from the checkpoint's own generation defaults."""

    max_new_tokens: int = Field(64, ge=1, description="Most tokens generated per example: the only limit on output "
                                                      "length.")
    num_beams: int = Field(1, ge=1, description="1 = greedy (or sampling); more = beam search.")
    do_sample: bool = Field(False, description="Sample instead of taking the most likely token.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling only.")
    top_k: int = Field(50, ge=0, description="Sampling only; 0 = no top-k cut.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Sampling only; 1.0 = no nucleus cut.")
    length_penalty: float = Field(1.0, description="Beam search only: >1 favours longer outputs.")
    no_repeat_ngram_size: int = Field(0, ge=0, description="Never repeat an n-gram of this size; 0 = off.")


class GenerationTaskConfig(StrictModel):
    """Task settings the three generation families share; each adds its `type` and its own fields."""

    backbone: Literal["auto", "seq2seq", "causal", "bert2bert"] = Field(
        "auto", description="auto: encoder-decoder checkpoints are seq2seq, BERT-family encoders are warm-started "
                            "as BERT2BERT, anything else is a causal LM.")
    prompt_style: Literal["auto", "chat", "plain"] = Field(
        "auto", description="Causal LMs only. auto: the tokenizer's chat template when it has one, else plain text.")
    max_target_length: int = Field(64, ge=1, description="Longest training target in tokens; longer ones are cut.")
    generation: GenerationSettings = Field(default_factory=GenerationSettings)


@dataclass
class SourceTurn:
    """One piece of what the model reads: a source sentence, a document, or one turn of a dialogue."""

    text: str
    tag: str = ""  # shown as "tag: text" in plain prompts ("" = none)
    role: Literal["user", "assistant"] = "user"  # its role under a chat template


@dataclass
class PromptSource:
    """What one example asks of the model, before a backbone and a prompt style shape it.

    `instruction` comes before the turns; `respond_tag` names who answers (dialogue; "" otherwise). When the
    input is too long, whole turns go first (oldest first), then tokens from the `cut` end of what is left.
    """

    instruction: str
    turns: list[SourceTurn]
    cut: Literal["start", "end"] = "end"
    respond_tag: str = ""


@dataclass
class GeneratedText:
    """One example's output, plus what the report counts about it."""

    text: str
    tokens: int
    reached_limit: bool  # max_new_tokens reached without an end token: the output may be cut
    reference_nll: float | None = None  # summed over the reference tokens (None without a reference)
    reference_tokens: int = 0
    source_truncated: bool = False
    target_truncated: bool = False


def build_language_model(config: GenerationTaskConfig, model_path: str, model_config: ModelConfig,
                         tokenizer: PreTrainedTokenizerBase,
                         from_checkpoint: bool) -> tuple[PreTrainedModel, LanguageModelHead]:
    """The backbone task.backbone asks for (a checkpoint keeps its own layout) and the head over it."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from homofit.model import load_backbone_config, load_pretrained

    backbone_config = load_backbone_config(model_path, model_config)
    if from_checkpoint:
        layout = "seq2seq" if backbone_config.is_encoder_decoder else "causal"
    else:
        backbone = config.backbone if config.backbone != "auto" else _auto_backbone(backbone_config)
        if backbone == "bert2bert":
            model = _warm_start_bert2bert(model_path, model_config)
            return model, LanguageModelHead(config, "seq2seq", tokenizer, decoder_start_token_id(model))
        _check_backbone(backbone, backbone_config, model_path)
        layout = backbone
    auto_class = AutoModelForSeq2SeqLM if layout == "seq2seq" else AutoModelForCausalLM
    model = load_pretrained(auto_class, model_path, backbone_config, model_config=model_config)
    if backbone_config.model_type == "encoder-decoder":
        _quiet_encoder_decoder_notice()
    return model, LanguageModelHead(config, layout, tokenizer,
                                    decoder_start_token_id(model) if layout == "seq2seq" else None)


class LanguageModelHead(Head):
    """The model side of a generation task, fixed by its backbone's layout and its tokenizer: prompts and
    targets to ids, batches, the loss on the target tokens, generation and decoding."""

    def __init__(self, config: GenerationTaskConfig, layout: Layout, tokenizer: PreTrainedTokenizerBase,
                 decoder_start: int | None = None) -> None:
        self.config = config
        self.layout = layout
        self.tokenizer = tokenizer
        self.decoder_start = decoder_start  # an encoder-decoder's first decoder token
        self.prompt_style = self._prompt_style(tokenizer)

    def _prompt_style(self, tokenizer: PreTrainedTokenizerBase) -> str:
        """seq2seq for an encoder-decoder; for a causal LM, chat or plain as task.prompt_style says."""
        if self.layout == "seq2seq":
            return "seq2seq"
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if self.config.prompt_style == "auto":
            return "chat" if has_template else "plain"
        if self.config.prompt_style == "chat" and not has_template:
            raise HomofitError("task.prompt_style: chat, but the tokenizer has no chat template; use plain or auto.")
        return self.config.prompt_style

    def trainable_modules(self, model: PreTrainedModel) -> list[str]:
        """None: the output layer is the decoder's, tied to the input embeddings, not a new head."""
        return []

    # -- encoding ---------------------------------------------------------------------------------------

    def encode(self, sources: list[PromptSource], targets: list[str | None], max_source_length: int) -> list[dict]:
        """One feature per example: its input ids and, with a target, its labels."""
        tokenizer = self.tokenizer
        end = end_token_id(tokenizer)
        features = []
        for index, (source, target) in enumerate(zip(sources, targets)):
            if self.layout == "seq2seq":
                prompt, truncated = self._seq2seq_input(source, max_source_length)
            elif self.prompt_style == "chat":
                prompt, truncated = self._chat_prompt(source, max_source_length)
            else:
                prompt, truncated = self._plain_prompt(source, max_source_length)
            feature: dict[str, Any] = {"example_index": index, "input_ids": prompt, "source_truncated": truncated,
                                       "target_truncated": False}
            if self.layout == "causal":
                feature["prompt_length"] = len(prompt)
            if target is not None:
                target_ids, feature["target_truncated"] = self._target_ids(target, source, end)
                if self.layout == "seq2seq":
                    feature["labels"] = target_ids
                else:
                    feature["input_ids"] = prompt + target_ids
                    feature["labels"] = [IGNORE_INDEX] * len(prompt) + target_ids
            features.append(feature)
        return features

    def _seq2seq_input(self, source: PromptSource, budget: int) -> tuple[list[int], bool]:
        from homofit.model import special_token_frame

        tokenizer = self.tokenizer
        before, after = special_token_frame(tokenizer)
        head = before + _ids(tokenizer, source.instruction)
        body = _ids(tokenizer, "\n".join(_plain_line(turn) for turn in source.turns))
        return _fit(head, body, after, budget, source.cut)

    def _plain_prompt(self, source: PromptSource, budget: int) -> tuple[list[int], bool]:
        from homofit.model import special_token_frame

        tokenizer = self.tokenizer
        before, _ = special_token_frame(tokenizer)  # a causal LM's start token (e.g. <s>), if its tokenizer adds one
        head = before + _ids(tokenizer, source.instruction)
        body = _ids(tokenizer, "\n".join(_plain_line(turn) for turn in source.turns))
        tail = _ids(tokenizer, "\n" + (f"{source.respond_tag}:" if source.respond_tag else ""))
        return _fit(head, body, tail, budget, source.cut)

    def _chat_prompt(self, source: PromptSource, budget: int) -> tuple[list[int], bool]:
        """The chat template over the turns; the oldest turns go first when it is too long, then tokens."""
        tokenizer = self.tokenizer
        turns = source.turns
        for first in range(len(turns)):
            ids = _ids(tokenizer, _render_chat(tokenizer, _chat_messages(source.instruction, turns[first:])))
            if len(ids) <= budget:
                return ids, first > 0
        last = turns[-1]
        messages = _chat_messages(source.instruction, [SourceTurn(PLACEHOLDER, last.tag, last.role)])
        head_text, tail_text = _render_chat(tokenizer, messages).split(PLACEHOLDER)
        body = _ids(tokenizer, last.text)
        prompt, _ = _fit(_ids(tokenizer, head_text), body, _ids(tokenizer, tail_text), budget, source.cut)
        return prompt, True

    def _target_ids(self, target: str, source: PromptSource, end: int) -> tuple[list[int], bool]:
        """The target's ids ending in the end token, cut to max_target_length (the end token is kept).

        An encoder-decoder's labels are the target as its tokenizer frames it (BART: <s> ... </s>), less a first
        token that is already the decoder's start (BERT2BERT's [CLS]): learning to repeat the start token is
        what an under-trained BERT2BERT falls into, emitting nothing but [CLS].
        """
        tokenizer = self.tokenizer
        if self.layout == "seq2seq":
            from homofit.model import special_token_frame

            before, after = special_token_frame(tokenizer)
            before = before[1:] if before[:1] == [self.decoder_start] else before
            after = after if after else [end]
            ids, truncated = _fit(before, _ids(tokenizer, target), after, self.config.max_target_length, "end")
            return ids, truncated
        text = f" {target}" if self.prompt_style == "plain" and source.respond_tag else target
        ids, truncated = _fit([], _ids(tokenizer, text), [end], self.config.max_target_length, "end")
        return ids, truncated

    # -- batches ----------------------------------------------------------------------------------------

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
        """Right-padded inputs and labels for the loss; left-padded prompts for a causal LM's generation."""
        import torch

        pad = pad_token_id(tokenizer)
        input_ids, attention_mask = _pad([feature["input_ids"] for feature in features], pad, "right")
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "labels" in features[0]:
            width = input_ids.shape[1] if self.layout == "causal" else None
            batch["labels"], _ = _pad([feature["labels"] for feature in features], IGNORE_INDEX, "right", width)
        if self.layout == "causal":
            prompts = [feature["input_ids"][: feature["prompt_length"]] for feature in features]
            batch["prompt_input_ids"], batch["prompt_attention_mask"] = _pad(prompts, pad, "left")
        return {key: value.to(torch.long) for key, value in batch.items()}

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative log-likelihood summed over the target tokens: the unit is a target token."""
        from homofit.losses import summed_cross_entropy

        logits, labels = _target_logits(model, batch, self.layout)
        return summed_cross_entropy(logits, labels)

    def predict(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        """Generated token ids per row and, when the batch has labels, each reference's summed NLL."""
        reference = _reference_nll(model, batch, self.layout) if "labels" in batch else None
        if self.layout == "causal":
            prompt_ids, prompt_mask = batch["prompt_input_ids"], batch["prompt_attention_mask"]
        else:
            prompt_ids, prompt_mask = batch["input_ids"], batch["attention_mask"]
        sequences = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask,
                                   generation_config=self.generation_config(model))
        # A causal LM returns the prompt too; an encoder-decoder returns its decoder start token first.
        new_tokens = sequences[:, prompt_ids.shape[1]:] if self.layout == "causal" else sequences[:, 1:]
        rows = []
        for row, tokens in enumerate(new_tokens.cpu().tolist()):
            output: dict[str, Any] = {"tokens": tokens}
            if reference is not None:
                output["reference_nll"], output["reference_tokens"] = reference[0][row], reference[1][row]
            rows.append(output)
        return rows

    def evaluate(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[list[Any], Any]:
        """The generated rows and, with labels, the references' NLL summed over their tokens (the training loss)."""
        import torch

        rows = self.predict(model, batch)
        if "labels" not in batch:
            return rows, None
        device = batch["input_ids"].device
        return rows, (torch.tensor(sum(row["reference_nll"] for row in rows), device=device),
                      torch.tensor(sum(row["reference_tokens"] for row in rows), device=device))

    def generation_config(self, model: PreTrainedModel) -> GenerationConfig:
        """The spec's settings and the special tokens, set explicitly so no checkpoint default applies."""
        from transformers import GenerationConfig

        settings = self.config.generation
        values: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens, "min_length": 0, "num_beams": settings.num_beams,
            "do_sample": settings.do_sample, "no_repeat_ngram_size": settings.no_repeat_ngram_size,
            "repetition_penalty": 1.0, "num_return_sequences": 1,
            "pad_token_id": pad_token_id(self.tokenizer), "eos_token_id": end_token_id(self.tokenizer),
        }
        if settings.do_sample:
            values.update(temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p)
        if settings.num_beams > 1:
            values["length_penalty"] = settings.length_penalty
        if self.layout == "seq2seq":
            values["decoder_start_token_id"] = decoder_start_token_id(model)
        return GenerationConfig(**values)

    def decode(self, features: list[dict], outputs: list[dict[str, Any]]) -> list[GeneratedText]:
        """Generated ids to text, cut at the first end token; one result per example (one feature each)."""
        end = end_token_id(self.tokenizer)
        limit = self.config.generation.max_new_tokens
        results: list[GeneratedText | None] = [None] * len(features)
        for feature, output in zip(features, outputs):
            tokens = output["tokens"]
            finished = end in tokens
            kept = tokens[: tokens.index(end)] if finished else tokens
            text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
            results[feature["example_index"]] = GeneratedText(
                text=text, tokens=len(kept), reached_limit=not finished and len(tokens) >= limit,
                reference_nll=output.get("reference_nll"), reference_tokens=output.get("reference_tokens", 0),
                source_truncated=feature["source_truncated"], target_truncated=feature["target_truncated"],
            )
        return [result for result in results if result is not None]

    def settings_report(self) -> dict[str, Any]:
        """The settings every report carries, defaults included."""
        return {
            "backbone": self.config.backbone,
            "layout": self.layout,
            "prompt_style": self.prompt_style,
            "max_target_length": self.config.max_target_length,
            **self.config.generation.model_dump(),
        }


class GenerationTask(Task):
    """What translation, summarization and dialogue share; a family adds its reader, its prompt source, its
    scorer and the notes of its report. Examples have `references` (the first is the training target) and
    `origin`. The head exists once `build_model` has seen the backbone and the tokenizer."""

    sentence_metric: ClassVar[str]  # the per-example score of `homofit compare` (a field of the records)

    def __init__(self, config: GenerationTaskConfig, state: dict[str, Any]) -> None:
        super().__init__(config, state)
        self.head: LanguageModelHead | None = None

    def prompt_source(self, example: Any, layout: Layout) -> PromptSource:
        """What the model reads for `example` (an instruction may depend on the layout)."""
        raise NotImplementedError

    def record_input(self, example: Any) -> Any:
        """The input as predictions/*.jsonl shows it."""
        raise NotImplementedError

    def metrics(self, hypotheses: list[str], examples: list[Any], likelihood: dict[str, Any]) -> dict[str, Any]:
        """The family's scores (the headline metrics first) and the details they come with."""
        raise NotImplementedError

    def report_notes(self, report: dict[str, Any]) -> list[str]:
        """Lines under the headline of reports/*.txt (metric signatures, what was scored)."""
        return []

    def extra_settings(self) -> dict[str, Any]:
        """The family's own settings, reported beside the generation settings."""
        return {}

    def build_model(self, model_path: str, model_config: ModelConfig, tokenizer: PreTrainedTokenizerBase,
                    from_checkpoint: bool) -> PreTrainedModel:
        model, self.head = build_language_model(self.config, model_path, model_config, tokenizer, from_checkpoint)
        return model

    def encode(self, examples: list[Any], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        """One feature per example; the first reference is the training target and the one whose perplexity
        is reported."""
        sources = [self.prompt_source(example, self.head.layout) for example in examples]
        targets = [example.references[0] if example.references else None for example in examples]
        return self.head.encode(sources, targets, data.max_length)

    def decode(self, examples: list[Any], features: list[dict], outputs: list[Any]) -> list[GeneratedText]:
        return self.head.decode(features, outputs)

    def score(self, examples: list[Any], predictions: list[GeneratedText]) -> dict[str, Any]:
        from homofit.metrics.generation import perplexity

        scored = [p for p in predictions if p.reference_nll is not None]
        nll, tokens = sum(p.reference_nll for p in scored), sum(p.reference_tokens for p in scored)
        likelihood = {"perplexity": perplexity(nll, tokens), "tokens": tokens, "examples": len(scored)}
        report = self.metrics([prediction.text for prediction in predictions], examples, likelihood)
        count = max(len(predictions), 1)
        report["outputs"] = {  # counts that tell whether anything was cut: inputs, training targets and outputs
            "examples": len(predictions),
            "mean_generated_tokens": round(sum(p.tokens for p in predictions) / count, 2),
            "outputs_at_max_new_tokens": sum(p.reached_limit for p in predictions),
            "sources_truncated": sum(p.source_truncated for p in predictions),
            "references_truncated": sum(p.target_truncated for p in predictions),
        }
        report["generation"] = self.head.settings_report() | self.extra_settings()
        return report

    def format_report(self, report: dict[str, Any]) -> str:
        """Headline scores, notes, the reference perplexity, output counts and settings."""
        lines = ["  ".join(f"{key} {report[key]:.2f}" for key in self.headline_metrics)]
        lines += self.report_notes(report)
        likelihood = report.get("reference_likelihood")
        if likelihood and likelihood["examples"]:
            lines.append(f"reference perplexity {likelihood['perplexity']:.3f} over {likelihood['tokens']} tokens")
        lines.append("outputs: " + ", ".join(f"{key} {value}" for key, value in report["outputs"].items()))
        lines.append("generation settings:")
        lines += [f"  {key}: {value!r}" for key, value in report["generation"].items()]
        return "\n".join(lines) + "\n"

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong (the sentence-level score at least `fail_below`) and the corpus counts."""
        from homofit.outcomes import generation_outcomes

        return generation_outcomes(records, self.sentence_metric, fail_below)

    def prediction_records(self, examples: list[Any], predictions: list[GeneratedText]) -> list[dict[str, Any]]:
        """One line of predictions/*.jsonl and of `homofit predict`."""
        records = []
        for example, prediction in zip(examples, predictions):
            record: dict[str, Any] = {"source": example.origin, "input": self.record_input(example),
                                      "generated": prediction.text, "generated_tokens": prediction.tokens}
            if prediction.reached_limit:
                record["reached_max_new_tokens"] = True
            if example.references:
                record["references"] = example.references
            records.append(record)
        return records

    def state(self) -> dict[str, Any]:
        return {"labels": [], "layout": self.head.layout if self.head is not None else None}


# -- helpers ----------------------------------------------------------------------------------------------


def end_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that ends a target and stops generation: EOS, or [SEP] for BERT-style tokenizers."""
    for token_id in (tokenizer.eos_token_id, tokenizer.sep_token_id):
        if token_id is not None:
            return token_id
    raise HomofitError("model.name_or_path: the tokenizer has neither an end-of-sequence nor a [SEP] token; "
                       "a generation task needs one to end its outputs.")


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The padding token; a causal LM without one (GPT-2) pads with its end token, always masked out."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_token_id(tokenizer)


def decoder_start_token_id(model: PreTrainedModel) -> int:
    for source in (model.generation_config, model.config):
        token_id = getattr(source, "decoder_start_token_id", None)
        if token_id is not None:
            return token_id
    raise HomofitError("model.name_or_path: the encoder-decoder checkpoint names no decoder_start_token_id.")


def _auto_backbone(config: PretrainedConfig) -> str:
    if config.is_encoder_decoder:
        return "seq2seq"
    return "bert2bert" if config.model_type in ENCODER_ONLY_TYPES else "causal"


def _check_backbone(backbone: str, config: PretrainedConfig, model_path: str) -> None:
    if backbone == "seq2seq" and not config.is_encoder_decoder:
        raise HomofitError(f"task.backbone: seq2seq needs an encoder-decoder checkpoint, but '{model_path}' is a "
                           f"'{config.model_type}' model; use backbone: bert2bert for an encoder or causal for a "
                           "decoder.")
    if backbone == "causal" and config.is_encoder_decoder:
        raise HomofitError(f"task.backbone: causal needs a decoder-only checkpoint, but '{model_path}' is an "
                           "encoder-decoder; use backbone: seq2seq or auto.")


def _warm_start_bert2bert(model_path: str, model_config: ModelConfig) -> PreTrainedModel:
    """An encoder-decoder whose two halves start from the same encoder checkpoint (Rothe et al., 2020).

    The cross-attention is new; the decoder's output layer stays tied to its input embeddings. Decoding
    starts at [CLS] and ends at [SEP]. The saved folder reloads with AutoModelForSeq2SeqLM.
    """
    from transformers import EncoderDecoderModel

    from homofit.model import load_backbone_config, load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(model_path)
    encoder_config = load_backbone_config(model_path, model_config)
    decoder_config = load_backbone_config(model_path, model_config, is_decoder=True, add_cross_attention=True)
    path = resolve_model_path(model_path)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path, encoder_config=encoder_config,
                                                                decoder_config=decoder_config)
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    if start is None:
        raise HomofitError(f"model.name_or_path: '{model_path}' has neither [CLS] nor a start token to begin decoding.")
    special = {"decoder_start_token_id": start, "pad_token_id": pad_token_id(tokenizer),
               "eos_token_id": end_token_id(tokenizer)}
    for key, value in special.items():
        setattr(model.config, key, value)
        setattr(model.generation_config, key, value)
    _quiet_encoder_decoder_notice()
    return model


def _quiet_encoder_decoder_notice() -> None:
    """EncoderDecoderModel warns on every loss that its loss moved out of the decoder in transformers 4.12;
    homofit computes it the current way, so the notice says nothing about this run."""
    import warnings

    warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way", category=FutureWarning)


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def _fit(head: list[int], body: list[int], tail: list[int], budget: int, cut: str) -> tuple[list[int], bool]:
    """head + body + tail within `budget` tokens, dropping body tokens from the `cut` end."""
    room = max(budget - len(head) - len(tail), 0)
    if len(body) <= room:
        return head + body + tail, False
    kept = body[:room] if cut == "end" else body[len(body) - room:]
    return head + kept + tail, True


def _plain_line(turn: SourceTurn) -> str:
    return f"{turn.tag}: {turn.text}" if turn.tag else turn.text


def _chat_messages(instruction: str, turns: list[SourceTurn]) -> list[dict[str, str]]:
    """Turns as chat messages; the instruction opens the first one."""
    messages = [{"role": turn.role, "content": turn.text} for turn in turns]
    if instruction and messages:
        messages[0]["content"] = instruction + messages[0]["content"]
    return messages


def _render_chat(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _pad(rows: list[list[int]], value: int, side: str, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows padded to one width on the given side, and the mask of real tokens."""
    import torch

    width = width or max(len(row) for row in rows)
    padded = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if not row:
            continue
        span = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        padded[index, span] = torch.tensor(row, dtype=torch.long)
        mask[index, span] = 1
    return padded, mask


def _target_logits(model: PreTrainedModel, batch: dict[str, torch.Tensor],
                   layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits that predict each label token, and those labels: a decoder-only model's are shifted by one
    (position t predicts token t + 1); an encoder-decoder builds its decoder inputs from the labels."""
    labels = batch["labels"]
    if layout == "seq2seq":
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
        return logits, labels
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[:, :-1], labels[:, 1:]


def _reference_nll(model: PreTrainedModel, batch: dict[str, torch.Tensor],
                   layout: str) -> tuple[list[float], list[int]]:
    """Summed negative log-likelihood of each row's label tokens, and how many there are."""
    import torch

    logits, labels = _target_logits(model, batch, layout)
    losses = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX,
                                               reduction="none")
    return losses.sum(dim=1).cpu().tolist(), (labels != IGNORE_INDEX).sum(dim=1).cpu().tolist()
