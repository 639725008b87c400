"""Translation: source sentence -> target sentence, scored by sacreBLEU's corpus BLEU and chrF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.data.parallel import parallel_files, read_parallel
from homofit.data.readers import detect_format, read_jsonl
from homofit.errors import HomofitError
from homofit.generation import (
    GeneratedText,
    GenerationTaskConfig,
    PromptSource,
    SourceTurn,
    TextGenerator,
    existing_path,
)
from homofit.tasks import register

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import DataConfig, ModelConfig
    from homofit.outcomes import Outcomes

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "ro": "Romanian", "ru": "Russian", "zh": "Chinese", "ja": "Japanese"}


class TranslationConfig(GenerationTaskConfig):
    type: Literal["translation"] = "translation"
    source_lang: str = Field("en", description="Source language code; also the suffix of line-aligned files.")
    target_lang: str = Field("de", description="Target language code; also the suffix of line-aligned files.")
    prefix: str | None = Field(None, description="Text put before every source (e.g. 'translate English to German: '"
                                                 "). Default: none for seq2seq, an instruction for causal LMs.")


@dataclass
class TranslationExample:
    source: str
    references: list[str]  # empty when the target is unknown
    origin: str


@register
class TranslationTask:
    name: ClassVar[str] = "translation"
    config_type: ClassVar[type] = TranslationConfig
    headline_metric: ClassVar[str] = "bleu"
    headline_metrics: ClassVar[tuple[str, ...]] = ("bleu", "chrf")
    # the starter spec's values beside the schema's defaults (`homofit init translation`)
    starter: ClassVar[dict[str, Any]] = (
        {'task': {'source_lang': 'en', 'target_lang': 'de'},
         'data': {'train': 'data/train.en',
                  'dev': 'data/val.en',
                  'test': 'data/test.en',
                  'max_length': 128},
         'model': {'name_or_path': 't5-small'},
         'train': {'epochs': 3,
                   'batch_size': 16,
                   'eval_batch_size': 32,
                   'eval_every': 'epoch',
                   'early_stopping': {'metric': 'bleu', 'mode': 'max', 'patience': 3},
                   'seed': 42}})

    def __init__(self, config: TranslationConfig, state: dict[str, Any]) -> None:
        self.config = config
        self.labels: list[str] = []
        self.generator = TextGenerator(config, layout=state.get("layout"))

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[TranslationExample]:
        if detect_format(path, data.format) == "jsonl":
            return self._read_jsonl(path, data.columns)
        if data.format != "auto":
            raise HomofitError(f"data.format: translation reads JSONL or line-aligned text files, not '{data.format}'.")
        source_path, target_path = parallel_files(path, self.config.source_lang, self.config.target_lang)
        return [TranslationExample(source, [target] if target is not None else [], f"{source_path}:{line}")
                for line, source, target in read_parallel(source_path, target_path)]

    def _read_jsonl(self, path: Path, columns: dict[str, int | str], need_target: bool = True) -> list[TranslationExample]:
        unknown = set(columns) - {"source", "target"}
        if unknown:
            raise HomofitError(f"data.columns: unknown key(s) {sorted(unknown)} for translation; use source and target.")
        source_key, target_key = str(columns.get("source", "source")), str(columns.get("target", "target"))
        examples = []
        for line, record in read_jsonl(path):
            if not isinstance(record.get(source_key), str):
                raise HomofitError(f"{path}:{line}: no text field '{source_key}'; set data.columns.source.")
            target = record.get(target_key)
            if target is None and need_target:
                raise HomofitError(f"{path}:{line}: no '{target_key}' field; set data.columns.target.")
            references = [target] if isinstance(target, str) else target if isinstance(target, list) else []
            if target is not None and not (isinstance(target, (str, list))
                                           and all(isinstance(reference, str) for reference in references)):
                raise HomofitError(f"{path}:{line}: '{target_key}' must be a string or a list of strings.")
            examples.append(TranslationExample(record[source_key], references, f"{path}:{line}"))
        return examples

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[TranslationExample]:
        """A JSONL file (targets optional), or raw text: one sentence to translate a line."""
        path = existing_path(path_or_text)
        if path is not None and detect_format(path, data.format) == "jsonl":
            return self._read_jsonl(path, data.columns, need_target=False)
        if path is not None:
            return [TranslationExample(source, [], f"{path}:{line}") for line, source, _ in read_parallel(path, None)]
        return [TranslationExample(line.strip(), [], f"line {number}")
                for number, line in enumerate(path_or_text.splitlines(), 1) if line.strip()]

    def set_labels(self, train_examples: list[TranslationExample], previous: list[str] | None) -> list[str]:
        return []

    # -- model ------------------------------------------------------------------------------------------

    def build_model(self, model_path: str, model_config: ModelConfig, from_checkpoint: bool) -> PreTrainedModel:
        return self.generator.build_model(model_path, model_config, from_checkpoint)

    def _prefix(self) -> str:
        if self.config.prefix is not None:
            return self.config.prefix
        if self.generator.layout == "seq2seq":
            return ""
        source, target = (LANGUAGE_NAMES.get(code, code) for code in (self.config.source_lang, self.config.target_lang))
        return f"Translate {source} to {target}:\n"

    def encode(self, examples: list[TranslationExample], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        sources = [PromptSource(self._prefix(), [SourceTurn(example.source)], cut="end") for example in examples]
        targets = [example.references[0] if example.references else None for example in examples]
        return self.generator.encode(sources, targets, tokenizer, data)

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
        return self.generator.collate(features, tokenizer)

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.generator.loss(model, batch)

    def predict_batch(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> list[Any]:
        return self.generator.predict_batch(model, batch)

    def evaluate_batch(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[list[Any], Any]:
        return self.generator.evaluate_batch(model, batch)

    def decode(self, examples: list[TranslationExample], features: list[dict], outputs: list[Any]) -> list[GeneratedText]:
        return self.generator.decode(features, outputs)

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[TranslationExample], predictions: list[GeneratedText]) -> dict[str, Any]:
        from homofit.metrics.generation import corpus_bleu, corpus_chrf

        hypotheses = [prediction.text for prediction in predictions]
        references = [example.references for example in examples]
        bleu, chrf = corpus_bleu(hypotheses, references), corpus_chrf(hypotheses, references)
        return {
            "bleu": bleu.pop("score"),
            "chrf": chrf.pop("score"),
            "bleu_signature": bleu.pop("signature"),
            "chrf_signature": chrf.pop("signature"),
            "bleu_details": bleu,
            "reference_likelihood": self.generator.likelihood_report(predictions),
            "outputs": self.generator.output_report(predictions),
            "generation": self.generator.settings_report() | {"source_lang": self.config.source_lang,
                                                              "target_lang": self.config.target_lang,
                                                              "prefix": self._prefix()},
        }

    def format_report(self, report: dict[str, Any]) -> str:
        from homofit.generation import format_generation_report

        return format_generation_report(report, ("bleu", "chrf"),
                                        [f"BLEU signature  {report['bleu_signature']}",
                                         f"chrF signature  {report['chrf_signature']}"])


    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong and metric counts from scored prediction records (`homofit compare`)."""
        from homofit.outcomes import generation_outcomes

        return generation_outcomes(records, "sentence_chrf", fail_below)

    def prediction_records(self, examples: list[TranslationExample], predictions: list[GeneratedText]) -> list[dict[str, Any]]:
        from homofit.generation import generation_record

        return [generation_record(example.origin, example.source, prediction, example.references)
                for example, prediction in zip(examples, predictions)]

    def input_text(self, example: TranslationExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return example.source

    def state(self) -> dict[str, Any]:
        return self.generator.state()
