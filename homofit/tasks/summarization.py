"""Summarization: document -> summary, scored by ROUGE-1/2/L/Lsum (stemmed) against one or more references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.data.readers import detect_format, open_text, read_jsonl
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
class SummarizationTask:
    name: ClassVar[str] = "summarization"
    config_type: ClassVar[type] = SummarizationConfig
    headline_metric: ClassVar[str] = "rougeL"
    headline_metrics: ClassVar[tuple[str, ...]] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    # the starter spec's values beside the schema's defaults (`homofit init summarization`)
    starter: ClassVar[dict[str, Any]] = (
        {'data': {'train': 'data/train.jsonl',
                  'dev': 'data/dev.jsonl',
                  'test': 'data/test.jsonl',
                  'columns': {'document': 'document', 'summary': 'summary'},
                  'max_length': 512},
         'model': {'name_or_path': 'sentence-transformers/all-MiniLM-L6-v2'},
         'train': {'epochs': 3,
                   'batch_size': 8,
                   'eval_batch_size': 16,
                   'eval_every': 'epoch',
                   'early_stopping': {'metric': 'rougeL', 'mode': 'max', 'patience': 3},
                   'seed': 42}})

    def __init__(self, config: SummarizationConfig, state: dict[str, Any]) -> None:
        self.config = config
        self.labels: list[str] = []
        self.generator = TextGenerator(config, layout=state.get("layout"))

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig, need_summary: bool = True) -> list[SummarizationExample]:
        """JSONL: `document` is a string or a list of sentences (joined by spaces); `summary` a string or a list
        of reference summaries. data.columns renames them, e.g. {document: source, summary: target}."""
        if detect_format(path, data.format) != "jsonl":
            raise HomofitError(f"{path}: summarization reads JSONL; set data.format: jsonl if the name says otherwise.")
        unknown = set(data.columns) - {"document", "summary"}
        if unknown:
            raise HomofitError(f"data.columns: unknown key(s) {sorted(unknown)} for summarization; use document and summary.")
        document_key = str(data.columns.get("document", "document"))
        summary_key = str(data.columns.get("summary", "summary"))
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
        path = existing_path(path_or_text)
        if path is not None and detect_format(path, data.format) == "jsonl":
            return self.read(path, data, need_summary=False)
        lines = open_text(path) if path is not None else path_or_text.splitlines()
        return [SummarizationExample(line.strip(), [], f"line {number}") for number, line in enumerate(lines, 1)
                if line.strip()]

    def set_labels(self, train_examples: list[SummarizationExample], previous: list[str] | None) -> list[str]:
        return []

    # -- model ------------------------------------------------------------------------------------------

    def build_model(self, model_path: str, model_config: ModelConfig, from_checkpoint: bool) -> PreTrainedModel:
        return self.generator.build_model(model_path, model_config, from_checkpoint)

    def _prefix(self) -> str:
        if self.config.prefix is not None:
            return self.config.prefix
        return "" if self.generator.layout == "seq2seq" else "Summarize the following text in one sentence:\n"

    def encode(self, examples: list[SummarizationExample], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        """The first reference is the training target and the one whose perplexity is reported."""
        sources = [PromptSource(self._prefix(), [SourceTurn(example.document)], cut="end") for example in examples]
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

    def decode(self, examples: list[SummarizationExample], features: list[dict], outputs: list[Any]) -> list[GeneratedText]:
        return self.generator.decode(features, outputs)

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[SummarizationExample], predictions: list[GeneratedText]) -> dict[str, Any]:
        from homofit.metrics.generation import rouge

        scores = rouge([prediction.text for prediction in predictions], [example.references for example in examples])
        return {
            **scores,
            "references": {"documents": len(examples), "summaries": sum(len(e.references) for e in examples)},
            "reference_likelihood": self.generator.likelihood_report(predictions),
            "outputs": self.generator.output_report(predictions),
            "generation": self.generator.settings_report() | {"prefix": self._prefix()},
        }

    def format_report(self, report: dict[str, Any]) -> str:
        from homofit.generation import format_generation_report

        references = report["references"]
        note = (f"ROUGE F1 x 100 (rouge-score, Porter stemmer); each document scores against the best of its "
                f"references ({references['summaries']} for {references['documents']} documents)")
        return format_generation_report(report, ("rouge1", "rouge2", "rougeL", "rougeLsum"), [note])


    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong and metric counts from scored prediction records (`homofit compare`)."""
        from homofit.outcomes import generation_outcomes

        return generation_outcomes(records, "sentence_rougeL", fail_below)

    def prediction_records(self, examples: list[SummarizationExample], predictions: list[GeneratedText]) -> list[dict[str, Any]]:
        from homofit.generation import generation_record

        return [generation_record(example.origin, example.document, prediction, example.references)
                for example, prediction in zip(examples, predictions)]

    def input_text(self, example: SummarizationExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return example.document

    def state(self) -> dict[str, Any]:
        return self.generator.state()


def _text_or_sentences(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(sentence, str) for sentence in value):
        return " ".join(sentence.strip() for sentence in value)
    return None
