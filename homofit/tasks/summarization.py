"""Summarization: document -> summary, scored by ROUGE-1/2/L/Lsum (stemmed) against one or more references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.data.readers import detect_format, jsonl_fields, open_text, read_jsonl
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


class SummarizationConfig(GenerationTaskConfig):
    type: Literal["summarization"] = "summarization"
    prefix: str | None = Field(None, description="Text put before every document (e.g. 'summarize: '). Default: "
                                                 "none for seq2seq, an instruction for causal LMs.")


@dataclass
class SummarizationExample:
    document: str
    references: list[str]  # empty when no summary is known
    origin: str


@register
class SummarizationTask(GenerationTask):
    name: ClassVar[str] = "summarization"
    config_type: ClassVar[type] = SummarizationConfig
    headline_metric: ClassVar[str] = "rougeL"
    headline_metrics: ClassVar[tuple[str, ...]] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    sentence_metric: ClassVar[str] = "sentence_rougeL"
    starter: ClassVar[dict[str, Any]] = {
        "data": {"columns": {"document": "document", "summary": "summary"}, "max_length": 512},
        "train": {"batch_size": 8, "eval_batch_size": 16, "early_stopping": {"metric": "rougeL", "patience": 3}}}

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig, need_summary: bool = True) -> list[SummarizationExample]:
        """JSONL: `document` is a string or a list of sentences (joined by spaces); `summary` a string or a list
        of reference summaries. data.columns renames them, e.g. {document: source, summary: target}."""
        if detect_format(path, data.format) != "jsonl":
            raise HomofitError(f"{path}: summarization reads JSONL; set data.format: jsonl if the name says otherwise.")
        document_key, summary_key = jsonl_fields(data.columns, ("document", "summary"), "summarization").values()
        examples = []
        for line, record in read_jsonl(path):
            document = _text_or_sentences(record.get(document_key))
            if document is None:
                raise HomofitError(f"{path}:{line}: '{document_key}' must be a string or a list of sentences; "
                                   "set data.columns.document.")
            summary = record.get(summary_key)
            references = [summary] if isinstance(summary, str) else summary
            if summary is None and not need_summary:
                references = []
            elif not isinstance(references, list) or not references or not all(isinstance(r, str) for r in references):
                raise HomofitError(f"{path}:{line}: '{summary_key}' must be a summary or a non-empty list of reference "
                                   "summaries; set data.columns.summary.")
            examples.append(SummarizationExample(document, references, f"{path}:{line}"))
        return examples

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[SummarizationExample]:
        """A JSONL file (summaries optional), or raw text: one document a line."""
        path = input_path(path_or_text)
        if path is not None and detect_format(path, data.format) == "jsonl":
            return self.read(path, data, need_summary=False)
        lines = open_text(path) if path is not None else path_or_text.splitlines()
        return [SummarizationExample(line.strip(), [], f"line {number}") for number, line in enumerate(lines, 1)
                if line.strip()]

    # -- prompts, scores and reports ---------------------------------------------------------------------

    def _prefix(self, layout: str) -> str:
        if self.config.prefix is not None:
            return self.config.prefix
        return "" if layout == "seq2seq" else "Summarize the following text in one sentence:\n"

    def prompt_source(self, example: SummarizationExample, layout: str) -> PromptSource:
        return PromptSource(self._prefix(layout), [SourceTurn(example.document)], cut="end")

    def record_input(self, example: SummarizationExample) -> str:
        return example.document

    def metrics(self, hypotheses: list[str], examples: list[SummarizationExample],
                likelihood: dict[str, Any]) -> dict[str, Any]:
        from homofit.metrics.generation import rouge

        return {
            **rouge(hypotheses, [example.references for example in examples]),
            "references": {"documents": len(examples), "summaries": sum(len(e.references) for e in examples)},
            "reference_likelihood": likelihood,
        }

    def report_notes(self, report: dict[str, Any]) -> list[str]:
        references = report["references"]
        return [(f"ROUGE F1 x 100 (rouge-score, Porter stemmer); each document scores against the best of its "
                f"references ({references['summaries']} for {references['documents']} documents)")]

    def extra_settings(self) -> dict[str, Any]:
        return {"prefix": self._prefix(self.head.layout)}

    def input_text(self, example: SummarizationExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return example.document


def _text_or_sentences(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(sentence, str) for sentence in value):
        return " ".join(sentence.strip() for sentence in value)
    return None
