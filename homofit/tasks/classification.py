"""Text classification: a text or a text pair to one label (softmax, cross-entropy) or to a set of labels
(a sigmoid per label and a threshold), scored with sklearn's per-class report and a confusion matrix."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from homofit.config import StrictModel
from homofit.data.readers import detect_format
from homofit.data.tables import Record, read_records
from homofit.data.windows import IGNORE_INDEX
from homofit.errors import HomofitError
from homofit.heads import SequenceLabelHead
from homofit.tasks import Task, register
from homofit.textfiles import input_path, text_lines

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from homofit.config import DataConfig
    from homofit.outcomes import Outcomes

COLUMN_KEYS = ("text", "text_pair", "label")
TEXT_FORMATS = ("csv", "tsv", "jsonl")


class ClassificationConfig(StrictModel):
    type: Literal["classification"] = "classification"
    multi_label: bool = Field(False, description="Any number of labels per text: a sigmoid per label and a threshold.")
    threshold: float = Field(0.5, gt=0.0, lt=1.0,
                             description="Multi-label: a label is predicted from this probability up.")
    label_separator: str = Field(",", min_length=1,
                                 description="Multi-label: what separates labels in one CSV/TSV cell.")
    class_weights: Literal["balanced"] | dict[str, float] | None = Field(
        None, description="Loss weight of each label: 'balanced' (inverse frequency in train) or {label: weight}; "
                          "multi-label: the weight of a label's positive examples.")
    label_names: list[str] | None = Field(
        None, description="Names of integer labels, in id order; the label order of the model when given.")

    @field_validator("threshold", "label_separator")
    @classmethod
    def _multi_label_only(cls, value: Any, info: ValidationInfo) -> Any:
        # Compared with the default, not "was it given": a checkpoint's spec lists every key.
        if not info.data.get("multi_label") and value != cls.model_fields[info.field_name].default:
            raise ValueError("only read with multi_label: true")
        return value

    @field_validator("class_weights")
    @classmethod
    def _positive_weights(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(weight <= 0 for weight in value.values()):
            raise ValueError("every weight must be positive")
        return value

    @field_validator("label_names")
    @classmethod
    def _distinct_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a name is listed twice")
        return value


@dataclass
class TextExample:
    text: str
    text_pair: str | None
    labels: list[str] | None  # exactly one label unless multi-label
    source: str


@dataclass
class ClassPrediction:
    labels: list[str]
    probabilities: list[float]  # one per label of the task, in its order
    truncated: bool


@register
class ClassificationTask(Task):
    name: ClassVar[str] = "classification"
    config_type: ClassVar[type] = ClassificationConfig
    headline_metric: str = "accuracy"
    headline_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "weighted_f1")
    starter: ClassVar[dict[str, Any]] = {
        "data": {"train": "data/train.csv", "dev": "data/dev.csv", "test": "data/test.csv",
                 "columns": {"text": "text", "label": "label"}},
        "train": {"batch_size": 32, "early_stopping": {"metric": "accuracy", "patience": 3}}}

    def __init__(self, config: ClassificationConfig, state: dict[str, Any]) -> None:
        super().__init__(config, state)
        self.head = SequenceLabelHead(config.multi_label, len(self.labels))
        # exact-set accuracy is harsh on multi-label data: select checkpoints by macro-F1 there
        self.headline_metric = "macro_f1" if config.multi_label else "accuracy"

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[TextExample]:
        return self._read(path, self._format(path, data.format), self._columns(data), data.header, labeled=True)

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[TextExample]:
        """A JSONL, CSV or TSV file as in training (labels optional), or raw text: one input a line
        (TAB between the two texts of a pair)."""
        path = input_path(path_or_text)
        if path is not None:
            file_format = detect_format(path, "auto")
            if file_format in TEXT_FORMATS:
                columns = self._columns(data)
                if file_format == "jsonl":
                    columns = {key: column if isinstance(column, str) else key for key, column in columns.items()}
                return self._read(path, file_format, columns, data.header, labeled=False)
            lines = list(text_lines(path))
        else:
            lines = path_or_text.splitlines()
        pairs = "text_pair" in data.columns
        examples = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            text, tab, pair = line.partition("\t")
            if pairs and not tab:
                raise HomofitError(f"line {number}: this model reads text pairs; put a TAB between the two texts, "
                                   "or give JSONL with 'text' and 'text_pair' fields.")
            examples.append(TextExample(text if pairs else line, pair if pairs else None, None, f"line {number}"))
        return examples

    def _format(self, path: Path, declared: str) -> str:
        file_format = detect_format(path, declared)
        if file_format not in TEXT_FORMATS:
            raise HomofitError(f"{path}: classification reads CSV, TSV or JSONL, not '{file_format}'; "
                               "set data.format to csv, tsv or jsonl.")
        return file_format

    def _columns(self, data: DataConfig) -> dict[str, int | str]:
        for key in data.columns:
            if key not in COLUMN_KEYS:
                raise HomofitError(f"data.columns.{key}: not a classification column; use text, text_pair "
                                   "(the second text of a pair) and label.")
        return {"text": "text", "label": "label", **data.columns}

    def _read(self, path: Path, file_format: str, columns: dict[str, int | str], header: bool | None,
              labeled: bool) -> list[TextExample]:
        required = {"text", "label"} if labeled else {"text"}
        if "text_pair" in columns:
            required.add("text_pair")
        records = read_records(path, file_format, columns, required, header)
        return [self._example(record) for record in records]

    def _example(self, record: Record) -> TextExample:
        texts = []
        for key in ("text", "text_pair"):
            value = record.fields.get(key)
            if value is not None and not isinstance(value, str):
                raise HomofitError(f"{record.source}: data.columns.{key} holds {type(value).__name__} {value!r}, "
                                   "not text.")
            texts.append(value)
        labels = self._labels_of(record.fields["label"], record.source) if "label" in record.fields else None
        return TextExample(texts[0], texts[1], labels, record.source)

    def _labels_of(self, value: Any, source: str) -> list[str]:
        if self.config.multi_label:
            if isinstance(value, str):
                value = [part for part in value.split(self.config.label_separator) if part.strip()]
            values = value if isinstance(value, list) else [value]
            return sorted({self._label_name(item, source) for item in values})
        if isinstance(value, list):
            raise HomofitError(f"{source}: the label is a list {value!r}; set task.multi_label: true for several "
                               "labels per text.")
        return [self._label_name(value, source)]

    def _label_name(self, value: Any, source: str) -> str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise HomofitError(f"{source}: the label must be a string or a number, not {type(value).__name__} "
                               f"{json.dumps(value)[:40]}; set data.columns.label to the field that holds it.")
        name = str(value).strip()
        names = self.config.label_names
        if names is None or name in names:
            if not name:
                raise HomofitError(f"{source}: empty label.")
            return name
        try:
            return names[int(name)]
        except (ValueError, IndexError):
            raise HomofitError(f"{source}: label {value!r} is neither one of task.label_names nor an index into "
                               f"them (0..{len(names) - 1}).") from None

    def initialize(self, train_examples: list[TextExample], tokenizer: PreTrainedTokenizerBase,
                   previous_state: dict[str, Any] | None) -> list[str]:
        """Labels in a stable order: task.label_names, else sorted (numbers by value), labels new to a
        checkpoint after its own; and the class weights of the loss."""
        previous = (previous_state or {}).get("labels")
        found = {label for example in train_examples for label in example.labels or []}
        ordered = list(self.config.label_names) if self.config.label_names else sorted(found, key=_natural_order)
        if len(ordered) < (1 if self.config.multi_label else 2):
            raise HomofitError(f"data.train: the training data has only the label(s) {sorted(found)}; "
                               "a classifier needs at least two.")
        new = [label for label in ordered if label not in (previous or [])]
        self.labels = [*previous, *new] if previous else ordered
        self.head = SequenceLabelHead(self.config.multi_label, len(self.labels), self._class_weights(train_examples))
        return new if previous else []

    def _class_weights(self, train_examples: list[TextExample]) -> list[float] | None:
        """'balanced' is sklearn's n / (classes * count), or negatives / positives per label when multi-label."""
        setting = self.config.class_weights
        if setting is None:
            return None
        if isinstance(setting, dict):
            unknown = sorted(set(setting) - set(self.labels))
            if unknown:
                raise HomofitError(f"task.class_weights: {unknown} are not labels of the training data "
                                   f"({', '.join(self.labels)}).")
            return [setting.get(label, 1.0) for label in self.labels]
        counts = Counter(label for example in train_examples for label in example.labels or [])
        total = len(train_examples)
        if self.config.multi_label:
            return [(total - counts[label]) / counts[label] if counts[label] else 1.0 for label in self.labels]
        return [total / (len(counts) * counts[label]) if counts[label] else 1.0 for label in self.labels]

    def encode(self, examples: list[TextExample], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        """One feature per example; an input longer than data.max_length is cut (the longer text of a pair
        first) and flagged, so the report can count it."""
        texts = [example.text for example in examples]
        pairs = [example.text_pair for example in examples] if examples and examples[0].text_pair is not None else None
        encoded = dict(tokenizer(texts, pairs))
        long = [index for index, ids in enumerate(encoded["input_ids"]) if len(ids) > data.max_length]
        if long:
            cut = tokenizer([texts[index] for index in long], [pairs[index] for index in long] if pairs else None,
                            truncation=True, max_length=data.max_length)
            for key, rows in encoded.items():
                for position, index in enumerate(long):
                    rows[index] = cut[key][position]
        label_ids = {label: index for index, label in enumerate(self.labels)}
        truncated = set(long)
        features = []
        for index, example in enumerate(examples):
            feature: dict[str, Any] = {"example_index": index, "input_ids": encoded["input_ids"][index],
                                       "truncated": index in truncated}
            if "token_type_ids" in encoded and pairs:
                feature["token_type_ids"] = encoded["token_type_ids"][index]
            if example.labels is not None:
                ids = [label_ids[label] for label in example.labels if label in label_ids]
                feature["labels"] = ids if self.config.multi_label else (ids[0] if ids else IGNORE_INDEX)
            features.append(feature)
        return features

    def decode(self, examples: list[TextExample], features: list[dict], outputs: list[Any]) -> list[ClassPrediction]:
        predictions: list[ClassPrediction | None] = [None] * len(examples)
        for feature, probabilities in zip(features, outputs):
            scores = [float(probability) for probability in probabilities]
            if self.config.multi_label:
                labels = [label for label, score in zip(self.labels, scores) if score >= self.config.threshold]
            else:
                labels = [self.labels[max(range(len(scores)), key=scores.__getitem__)]]
            predictions[feature["example_index"]] = ClassPrediction(labels, scores, feature["truncated"])
        return predictions

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[TextExample], predictions: list[ClassPrediction]) -> dict[str, Any]:
        from homofit.metrics.classification import multi_label_report, single_label_report

        unlabeled = next((example.source for example in examples if example.labels is None), None)
        if unlabeled is not None:
            raise HomofitError(f"{unlabeled}: no label; scoring needs a label for every example.")
        if self.config.multi_label:
            report = multi_label_report([set(example.labels) for example in examples],
                                        [set(prediction.labels) for prediction in predictions], self.labels)
        else:
            report = single_label_report([example.labels[0] for example in examples],
                                         [prediction.labels[0] for prediction in predictions], self.labels)
        report["truncated_inputs"] = sum(prediction.truncated for prediction in predictions)
        return report

    def format_report(self, report: dict[str, Any]) -> str:
        from homofit.metrics.classification import format_classification_report

        return format_classification_report(report)

    def write_report_figures(self, report: dict[str, Any], folder: Path, name: str) -> None:
        """reports/<name>.confusion.png, when matplotlib is installed (single-label only)."""
        from homofit.metrics.classification import save_confusion_matrix_png

        matrix = report["confusion_matrix"]
        if "matrix" in matrix:
            save_confusion_matrix_png(matrix["labels"], matrix["matrix"], folder / f"{name}.confusion.png",
                                      f"{name}: accuracy {report['accuracy']:.4f}")

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong and metric counts from scored prediction records (`homofit compare`)."""
        from homofit.outcomes import label_outcomes, multi_label_outcomes

        if self.config.multi_label:
            return multi_label_outcomes(records, self.labels)
        return label_outcomes(records, self.labels)

    def prediction_records(self, examples: list[TextExample],
                           predictions: list[ClassPrediction]) -> list[dict[str, Any]]:
        records = []
        for example, prediction in zip(examples, predictions):
            record: dict[str, Any] = {"source": example.source, "text": example.text}
            if example.text_pair is not None:
                record["text_pair"] = example.text_pair
            if self.config.multi_label:
                record["labels"] = prediction.labels
            else:
                record["label"] = prediction.labels[0]
            record["probabilities"] = {label: round(score, 6)
                                       for label, score in zip(self.labels, prediction.probabilities)}
            if example.labels is not None:
                record["gold_labels" if self.config.multi_label else "gold_label"] = (
                    example.labels if self.config.multi_label else example.labels[0])
            if prediction.truncated:
                record["truncated"] = True
            records.append(record)
        return records

    def input_text(self, example: TextExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return example.text if example.text_pair is None else f"{example.text}\n{example.text_pair}"


def _natural_order(label: str) -> tuple[int, int, str]:
    """Numeric labels by value ('2' before '10'), then the others alphabetically."""
    return (0, int(label), "") if label.removeprefix("-").isdigit() else (1, 0, label)
