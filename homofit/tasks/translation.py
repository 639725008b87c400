"""Translation: source sentence -> target sentence, scored by sacreBLEU's corpus BLEU and chrF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.data.parallel import parallel_files, read_parallel
from homofit.data.readers import detect_format, jsonl_fields, read_jsonl
from homofit.errors import HomofitError
from homofit.generation import (
    GenerationTask,
    GenerationTaskConfig,
    PromptSource,
    SourceTurn,
)
from homofit.tasks import register
from homofit.textfiles import input_path

if TYPE_CHECKING:
    from homofit.config import DataConfig

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "ro": "Romanian", "ru": "Russian", "zh": "Chinese",
                  "ja": "Japanese"}


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
class TranslationTask(GenerationTask):
    name: ClassVar[str] = "translation"
    config_type: ClassVar[type] = TranslationConfig
    headline_metric: ClassVar[str] = "bleu"
    headline_metrics: ClassVar[tuple[str, ...]] = ("bleu", "chrf")
    sentence_metric: ClassVar[str] = "sentence_chrf"
    starter: ClassVar[dict[str, Any]] = {
        "data": {"train": "data/train.en", "dev": "data/val.en", "test": "data/test.en"},
        "model": {"name_or_path": "t5-small"},
        "train": {"eval_batch_size": 32, "early_stopping": {"metric": "bleu", "patience": 3}}}

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[TranslationExample]:
        if detect_format(path, data.format) == "jsonl":
            return self._read_jsonl(path, data.columns)
        if data.format != "auto":
            raise HomofitError(f"data.format: translation reads JSONL or line-aligned text files, not '{data.format}'.")
        source_path, target_path = parallel_files(path, self.config.source_lang, self.config.target_lang)
        return [TranslationExample(source, [target] if target is not None else [], f"{source_path}:{line}")
                for line, source, target in read_parallel(source_path, target_path)]

    def _read_jsonl(self, path: Path, columns: dict[str, int | str],
                    need_target: bool = True) -> list[TranslationExample]:
        source_key, target_key = jsonl_fields(columns, ("source", "target"), "translation").values()
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
        path = input_path(path_or_text)
        if path is not None and detect_format(path, data.format) == "jsonl":
            return self._read_jsonl(path, data.columns, need_target=False)
        if path is not None:
            return [TranslationExample(source, [], f"{path}:{line}") for line, source, _ in read_parallel(path, None)]
        return [TranslationExample(line.strip(), [], f"line {number}")
                for number, line in enumerate(path_or_text.splitlines(), 1) if line.strip()]

    # -- prompts, scores and reports ---------------------------------------------------------------------

    def _prefix(self, layout: str) -> str:
        if self.config.prefix is not None:
            return self.config.prefix
        if layout == "seq2seq":
            return ""
        source, target = (LANGUAGE_NAMES.get(code, code) for code in (self.config.source_lang, self.config.target_lang))
        return f"Translate {source} to {target}:\n"

    def prompt_source(self, example: TranslationExample, layout: str) -> PromptSource:
        return PromptSource(self._prefix(layout), [SourceTurn(example.source)], cut="end")

    def record_input(self, example: TranslationExample) -> str:
        return example.source

    def metrics(self, hypotheses: list[str], examples: list[TranslationExample],
                likelihood: dict[str, Any]) -> dict[str, Any]:
        from homofit.metrics.generation import corpus_bleu, corpus_chrf

        references = [example.references for example in examples]
        bleu, chrf = corpus_bleu(hypotheses, references), corpus_chrf(hypotheses, references)
        return {
            "bleu": bleu.pop("score"),
            "chrf": chrf.pop("score"),
            "bleu_signature": bleu.pop("signature"),
            "chrf_signature": chrf.pop("signature"),
            "bleu_details": bleu,
            "reference_likelihood": likelihood,
        }

    def report_notes(self, report: dict[str, Any]) -> list[str]:
        return [f"BLEU signature  {report['bleu_signature']}", f"chrF signature  {report['chrf_signature']}"]

    def extra_settings(self) -> dict[str, Any]:
        return {"source_lang": self.config.source_lang, "target_lang": self.config.target_lang,
                "prefix": self._prefix(self.head.layout)}

    def input_text(self, example: TranslationExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return example.source
