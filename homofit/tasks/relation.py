"""Relation extraction (relation classification): the label of a head and a tail entity in a text.

The entity-marker recipe: marker tokens ([E1] .. [/E1] around the head, [E2] .. [/E2] around the tail,
or typed ones such as [E1:PER]) are added to the tokenizer and the embeddings; the text is tokenized as
it is and the markers' ids are inserted at the entities' token boundaries, so no tokenizer ever sees a
marker glued to a word. The label comes from the pooled output (a plain transformers sequence classifier)
or from the states at the two start markers, concatenated.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from homofit.config import StrictModel
from homofit.data.readers import detect_format, open_text, strip_span
from homofit.data.tables import Record, read_records
from homofit.data.windows import IGNORE_INDEX
from homofit.errors import HomofitError
from homofit.heads import EntityStartHead, SequenceLabelHead
from homofit.tasks import Task, register
from homofit.textfiles import input_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import DataConfig, ModelConfig
    from homofit.outcomes import Outcomes

log = logging.getLogger("homofit")

COLUMN_KEYS = ("text", "head", "tail", "label", "id", "head_type", "tail_type")
MARKUP_TAG = re.compile(r"</?e[12]>")
SEMEVAL_SENTENCE = re.compile(r'^(\d+)\t"(.*)"\s*$')
ROLES = ("head", "tail")


class RelationConfig(StrictModel):
    type: Literal["relation"] = "relation"
    markers: Literal["untyped", "typed"] = Field(
        "untyped", description="untyped: [E1] [/E1] [E2] [/E2]; typed: [E1:TYPE] .. with the entity types of the data.")
    head: Literal["entity_start", "pooled"] = Field(
        "entity_start", description="entity_start: the states at [E1] and [E2], concatenated; pooled: the pooled "
                                    "output (a plain transformers sequence classifier).")
    negative_label: str | None = Field(
        "Other", description="The 'no relation' label, left out of the macro and micro averages; null for none.")

    @field_validator("negative_label")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("give a label name, or null for none")
        return value


@dataclass(frozen=True)
class EntitySpan:
    """Characters [start, end) of the text; `type` is read only with typed markers."""

    start: int
    end: int
    type: str | None = None


@dataclass
class RelationExample:
    text: str
    head: EntitySpan
    tail: EntitySpan
    label: str | None
    source: str
    id: str | None = None


@dataclass
class RelationPrediction:
    label: str
    probabilities: list[float] | None  # None: the example did not fit data.max_length
    widened_spans: int = 0
    trimmed: bool = False

    @property
    def unfit(self) -> bool:
        return self.probabilities is None


@register
class RelationTask(Task):
    name: ClassVar[str] = "relation"
    config_type: ClassVar[type] = RelationConfig
    headline_metric: ClassVar[str] = "official_macro_f1"
    headline_metrics: ClassVar[tuple[str, ...]] = ("official_macro_f1", "micro_f1", "accuracy")
    starter: ClassVar[dict[str, Any]] = {
        "data": {"columns": {"text": "text", "head": "head", "tail": "tail", "label": "label"}},
        "train": {"epochs": 5, "batch_size": 32, "early_stopping": {"metric": "official_macro_f1", "patience": 3}}}

    def __init__(self, config: RelationConfig, state: dict[str, Any]) -> None:
        super().__init__(config, state)
        self.entity_types: list[str] = list(state.get("entity_types", []))
        self.head = SequenceLabelHead() if config.head == "pooled" else EntityStartHead()

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[RelationExample]:
        return self._read(path, detect_format(path, data.format), data, labeled=True)

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[RelationExample]:
        """A data file as in training (labels optional), or raw text with <e1>..</e1> and <e2>..</e2>, one a line."""
        path = input_path(path_or_text)
        if path is not None:
            file_format = detect_format(path, "auto")
            if file_format in {"jsonl", "csv", "tsv"} or _is_semeval_file(path):
                return self._read(path, file_format, data, labeled=False)
            lines = list(open_text(path))
        else:
            lines = path_or_text.splitlines()
        examples = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                text, head, tail = _parse_markup(line, f"line {number}")
                examples.append(self._example(text, head, tail, None, f"line {number}"))
        return examples

    def _read(self, path: Path, file_format: str, data: DataConfig, labeled: bool) -> list[RelationExample]:
        columns = self._columns(data)
        if file_format == "jsonl":
            records = read_records(path, "jsonl", columns, {"text", "label"} if labeled else {"text"})
            examples = [self._from_jsonl(record) for record in records]
        elif file_format in {"csv", "tsv"}:
            table_columns = {key: columns[key] for key in ("text", "label", "id")}
            required = ({"text", "label"} if labeled else {"text"}) | ({"id"} & set(data.columns))
            records = read_records(path, file_format, table_columns, required, data.header)
            examples = [self._from_markup(record) for record in records]
        elif _is_semeval_file(path):
            examples = self._read_semeval(path)
        else:
            raise HomofitError(f"{path}: relation extraction reads JSONL (character spans or <e1>/<e2> markup), "
                               "CSV/TSV with marked-up text, or the SemEval-2010 Task 8 release format "
                               "('ID<TAB>\"sentence\"', label, comment, blank line); set data.format.")
        if labeled:
            unlabeled = next((example.source for example in examples if example.label is None), None)
            if unlabeled is not None:
                raise HomofitError(f"{unlabeled}: no relation label.")
        return examples

    def _columns(self, data: DataConfig) -> dict[str, int | str]:
        for key in data.columns:
            if key not in COLUMN_KEYS:
                raise HomofitError(f"data.columns.{key}: not a relation column; use {', '.join(COLUMN_KEYS)}.")
        columns: dict[str, int | str] = {key: key for key in COLUMN_KEYS}
        return {**columns, **data.columns}

    def _from_jsonl(self, record: Record) -> RelationExample:
        fields, source = record.fields, record.source
        text = fields["text"]
        if not isinstance(text, str):
            raise HomofitError(f"{source}: data.columns.text holds {type(text).__name__}, not text.")
        if "head" not in fields and "tail" not in fields:
            text, head, tail = _parse_markup(text, source)
        else:
            head, tail = (_span_from_json(text, fields.get(role), role, source) for role in ROLES)
        if self.config.markers == "typed":
            head, tail = (EntitySpan(span.start, span.end, span.type or _optional_str(fields.get(f"{role}_type")))
                          for span, role in ((head, "head"), (tail, "tail")))
        label = _optional_str(fields.get("label"))
        return self._example(text, head, tail, label, source, _optional_str(fields.get("id")))

    def _from_markup(self, record: Record) -> RelationExample:
        text, head, tail = _parse_markup(record.fields["text"], record.source)
        return self._example(text, head, tail, record.fields.get("label") or None, record.source,
                             record.fields.get("id"))

    def _read_semeval(self, path: Path) -> list[RelationExample]:
        """Blocks of: 'ID<TAB>"sentence with <e1>..</e1> and <e2>..</e2>"', the label (absent in the unlabeled
        test release), 'Comment: ...', a blank line."""
        lines = list(open_text(path))
        examples, index = [], 0
        while index < len(lines):
            line = lines[index]
            if not line.strip() or line.startswith("Comment"):
                index += 1
                continue
            match = SEMEVAL_SENTENCE.match(line)
            source = f"{path}:{index + 1}"
            if match is None:
                raise HomofitError(f"{source}: expected a sentence line 'ID<TAB>\"text with <e1>..</e1> and "
                                   f"<e2>..</e2>\"', found {line[:60]!r}.")
            label = None
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if following and not following.startswith("Comment") and not SEMEVAL_SENTENCE.match(following):
                label, index = following, index + 1
            text, head, tail = _parse_markup(match.group(2), source)
            examples.append(self._example(text, head, tail, label, source, match.group(1)))
            index += 1
        return examples

    def _example(self, text: str, head: EntitySpan, tail: EntitySpan, label: str | None, source: str,
                 example_id: str | None = None) -> RelationExample:
        if self.config.markers == "typed":
            for role, span in (("head", head), ("tail", tail)):
                if not span.type:
                    raise HomofitError(f"{source}: no entity type for the {role}; task.markers: typed reads it from "
                                       f"the span's 'type' or the {role}_type field (or use markers: untyped).")
        if head.start < tail.end and tail.start < head.end:
            inside = ((head.start <= tail.start and tail.end <= head.end)
                      or (tail.start <= head.start and head.end <= tail.end))
            if not inside or (head.start, head.end) == (tail.start, tail.end):
                raise HomofitError(f"{source}: the head [{head.start}, {head.end}) and the tail [{tail.start}, "
                                   f"{tail.end}) overlap; markers can enclose one entity inside another, not cross.")
        return RelationExample(text, head, tail, label.strip() if label else label, source, example_id)

    def initialize(self, train_examples: list[RelationExample], tokenizer: PreTrainedTokenizerBase,
                   previous_state: dict[str, Any] | None) -> list[str]:
        """The relation labels (a checkpoint's first), the entity types of typed markers, and the marker
        tokens, added to the tokenizer (which every checkpoint saves, markers included)."""
        previous = (previous_state or {}).get("labels")
        self.entity_types = list((previous_state or {}).get("entity_types", []))
        found = sorted({example.label for example in train_examples if example.label is not None})
        if len(found) < 2:
            raise HomofitError(f"data.train: the training data has only the label(s) {found}; a classifier needs two.")
        types = sorted({span.type for example in train_examples for span in (example.head, example.tail) if span.type})
        if self.config.markers == "typed":
            self.entity_types = [*self.entity_types, *(name for name in types if name not in self.entity_types)]
        new = [label for label in found if label not in (previous or [])]
        self.labels = [*previous, *new] if previous else found
        self.add_markers(tokenizer)
        return new if previous else []

    def add_markers(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Add the marker tokens to the tokenizer (a no-op for a checkpoint's tokenizer, which has them)."""
        tokenizer.add_tokens(self.marker_tokens(), special_tokens=True)

    def marker_tokens(self) -> list[str]:
        if self.config.markers == "untyped":
            return ["[E1]", "[/E1]", "[E2]", "[/E2]"]
        return [f"[{tag}:{name}]" for name in self.entity_types for tag in ("E1", "/E1", "E2", "/E2")]

    # -- model ------------------------------------------------------------------------------------------

    def build_model(self, model_path: str, model_config: ModelConfig, tokenizer: PreTrainedTokenizerBase,
                    from_checkpoint: bool) -> PreTrainedModel:
        """The head's model, its embeddings grown for the marker tokens."""
        model = self.head.build(model_path, model_config, self.labels, from_checkpoint)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        return model

    def encode(self, examples: list[RelationExample], tokenizer: PreTrainedTokenizerBase,
               data: DataConfig) -> list[dict]:
        """One feature per example that fits: the text's tokens with the markers inserted, cut to a window
        around both entities when too long. An example whose entities lie too far apart gets no feature."""
        from homofit.model import special_token_frame

        prefix, suffix = special_token_frame(tokenizer)
        budget = data.max_length - len(prefix) - len(suffix)
        marker_ids = dict(zip(self.marker_tokens(), tokenizer.convert_tokens_to_ids(self.marker_tokens())))
        if tokenizer.unk_token_id in marker_ids.values():
            raise HomofitError("model.name_or_path: the tokenizer has no entity marker tokens; a relation checkpoint "
                               "saves its tokenizer with them, so point at the checkpoint folder itself.")
        encoded = tokenizer([example.text for example in examples], add_special_tokens=False,
                            return_offsets_mapping=True)
        label_ids = {label: index for index, label in enumerate(self.labels)}
        features, unfit = [], 0
        for index, example in enumerate(examples):
            marked = self._insert_markers(encoded["input_ids"][index], encoded["offset_mapping"][index], example,
                                          marker_ids)
            window = _window_around(marked.start_of, marked.end_of, len(marked.ids), budget)
            if window is None:
                unfit += 1
                continue
            start, end = window
            feature = {
                "example_index": index,
                "input_ids": [*prefix, *marked.ids[start:end], *suffix],
                "head_start": marked.start_of["head"] - start + len(prefix),
                "tail_start": marked.start_of["tail"] - start + len(prefix),
                "widened_spans": marked.widened,
                "trimmed": start > 0 or end < len(marked.ids),
            }
            if example.label is not None:
                feature["labels"] = label_ids.get(example.label, IGNORE_INDEX)
            features.append(feature)
        if unfit:
            log.warning("%d of %d examples have their two entities further apart than data.max_length (%d) allows; "
                        "they are left out of training and predicted as %s in reports", unfit, len(examples),
                        data.max_length, self.config.negative_label)
        return features

    def _insert_markers(self, ids: list[int], offsets: list[tuple[int, int]], example: RelationExample,
                        marker_ids: dict[str, int]) -> MarkedTokens:
        spans = {"head": example.head, "tail": example.tail}
        tokens = {role: _token_range(offsets, span, example, role) for role, span in spans.items()}
        (head_first, head_end), (tail_first, tail_end) = (tokens[role][:2] for role in ROLES)
        crossing = head_first < tail_first < head_end < tail_end or tail_first < head_first < tail_end < head_end
        if crossing or (head_first, head_end) == (tail_first, tail_end):
            raise HomofitError(f"{example.source}: the head and the tail fall into the same or crossing subword "
                               "tokens; their markers cannot be placed.")
        # At one position, closing markers go before opening ones, an outer entity opens first and closes last.
        events = []
        for role, number in (("head", 1), ("tail", 2)):
            first, end, _ = tokens[role]
            marker_type = f":{spans[role].type}" if self.config.markers == "typed" else ""
            if f"[E{number}{marker_type}]" not in marker_ids:
                raise HomofitError(f"{example.source}: the {role}'s entity type '{spans[role].type}' is not in the "
                                   f"training data, so it has no marker; known types: {', '.join(self.entity_types)}.")
            events.append((first, 1, -end, role, "start", marker_ids[f"[E{number}{marker_type}]"]))
            events.append((end, 0, -first, role, "end", marker_ids[f"[/E{number}{marker_type}]"]))
        marked: list[int] = []
        start_of, end_of, cursor = {}, {}, 0
        for position, _, _, role, kind, marker_id in sorted(events):
            marked += ids[cursor:position]
            cursor = position
            (start_of if kind == "start" else end_of)[role] = len(marked)
            marked.append(marker_id)
        marked += ids[cursor:]
        return MarkedTokens(marked, start_of, end_of, sum(not tokens[role][2] for role in ROLES))

    def decode(self, examples: list[RelationExample], features: list[dict],
               outputs: list[Any]) -> list[RelationPrediction]:
        unfit_label = self.config.negative_label or "(none)"
        predictions = [RelationPrediction(unfit_label, None) for _ in examples]
        for feature, probabilities in zip(features, outputs):
            scores = [float(probability) for probability in probabilities]
            best = max(range(len(scores)), key=scores.__getitem__)
            predictions[feature["example_index"]] = RelationPrediction(self.labels[best], scores,
                                                                       feature["widened_spans"], feature["trimmed"])
        return predictions

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[RelationExample], predictions: list[RelationPrediction]) -> dict[str, Any]:
        from homofit.metrics.relation import relation_report

        unlabeled = next((example.source for example in examples if example.label is None), None)
        if unlabeled is not None:
            raise HomofitError(f"{unlabeled}: no relation label; scoring needs a label for every example.")
        report = relation_report([example.label for example in examples],
                                 [prediction.label for prediction in predictions], self.labels,
                                 self.config.negative_label)
        report["unfit_examples"] = sum(prediction.unfit for prediction in predictions)
        report["widened_spans"] = sum(prediction.widened_spans for prediction in predictions)
        report["trimmed_inputs"] = sum(prediction.trimmed for prediction in predictions)
        return report

    def format_report(self, report: dict[str, Any]) -> str:
        from homofit.metrics.relation import format_relation_report

        notes = [
            (f"examples whose entities did not fit data.max_length (predicted as "
             f"{self.config.negative_label or '(none)'}): {report['unfit_examples']}"),
            f"entity spans widened to whole subword tokens: {report['widened_spans']}",
            f"inputs cut to a window around the entities: {report['trimmed_inputs']}",
        ]
        return format_relation_report(report) + "\n" + "\n".join(notes) + "\n"

    def write_report_figures(self, report: dict[str, Any], folder: Path, name: str) -> None:
        """reports/<name>.confusion.png, when matplotlib is installed."""
        from homofit.metrics.classification import save_confusion_matrix_png

        matrix = report["confusion_matrix"]
        save_confusion_matrix_png(matrix["labels"], matrix["matrix"], folder / f"{name}.confusion.png",
                                  f"{name}: official macro-F1 {100 * report['official_macro_f1']:.2f}%")

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong and metric counts from scored prediction records (`homofit compare`)."""
        from homofit.outcomes import relation_outcomes

        return relation_outcomes(records, self.config.negative_label)

    def prediction_records(self, examples: list[RelationExample],
                           predictions: list[RelationPrediction]) -> list[dict[str, Any]]:
        records = []
        for example, prediction in zip(examples, predictions):
            record: dict[str, Any] = {"source": example.source}
            if example.id is not None:
                record["id"] = example.id
            record["text"] = example.text
            for role in ROLES:
                span: EntitySpan = getattr(example, role)
                record[role] = {"start": span.start, "end": span.end, "text": example.text[span.start : span.end]}
                if span.type:
                    record[role]["type"] = span.type
            record["label"] = prediction.label
            if prediction.probabilities is None:
                record["unfit"] = True
            else:
                record["probabilities"] = {label: round(score, 6)
                                           for label, score in zip(self.labels, prediction.probabilities)}
            if example.label is not None:
                record["gold_label"] = example.label
            records.append(record)
        return records

    def input_text(self, example: RelationExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return example.text

    def state(self) -> dict[str, Any]:
        return {"labels": self.labels, "entity_types": self.entity_types}


@dataclass
class MarkedTokens:
    """Token ids with the four markers inserted, and where each entity's start and end marker is."""

    ids: list[int]
    start_of: dict[str, int]
    end_of: dict[str, int]
    widened: int  # entities whose span starts or ends inside a token, so the markers enclose a little more


def _window_around(start_of: dict[str, int], end_of: dict[str, int], length: int,
                   budget: int) -> tuple[int, int] | None:
    """Tokens [start, end) of at most `budget`, holding all four markers with the context split around them;
    None when the markers alone span more than `budget`."""
    first, last = min(start_of.values()), max(end_of.values()) + 1
    if last - first > budget:
        return None
    if length <= budget:
        return 0, length
    spare = budget - (last - first)
    start = max(0, min(first - spare // 2, length - budget))
    return start, start + budget


def _token_range(offsets: list[tuple[int, int]], span: EntitySpan, example: RelationExample,
                 role: str) -> tuple[int, int, bool]:
    """Tokens [first, end) that overlap the span, and whether they cover exactly its characters."""
    inside = [index for index, (start, end) in enumerate(offsets)
              if start < span.end and end > span.start and end > start]
    if not inside:
        raise HomofitError(f"{example.source}: the {role} {example.text[span.start:span.end]!r} becomes no token "
                           "at all.")
    first, end = inside[0], inside[-1] + 1
    return first, end, offsets[first][0] == span.start and offsets[end - 1][1] == span.end


def _parse_markup(marked: str, source: str) -> tuple[str, EntitySpan, EntitySpan]:
    """Text with <e1>..</e1> (the head) and <e2>..</e2> (the tail) -> plain text and the two spans."""
    pieces, opened, spans, length, cursor = [], {}, {}, 0, 0
    for match in MARKUP_TAG.finditer(marked):
        pieces.append(marked[cursor : match.start()])
        length += match.start() - cursor
        cursor = match.end()
        tag = match.group()
        name = tag.strip("</>")
        if not tag.startswith("</"):
            if name in opened or name in spans:
                raise HomofitError(f"{source}: <{name}> opens twice; mark each entity once.")
            opened[name] = length
        elif name not in opened:
            raise HomofitError(f"{source}: </{name}> closes an entity that was not opened.")
        else:
            spans[name] = (opened.pop(name), length)
    pieces.append(marked[cursor:])
    text = "".join(pieces)
    if opened or set(spans) != {"e1", "e2"}:
        missing = sorted({"e1", "e2"} - set(spans))
        raise HomofitError(f"{source}: expected <e1>..</e1> around the head and <e2>..</e2> around the tail; "
                           f"{'unclosed' if opened else 'missing'}: {', '.join(sorted(opened) or missing)}.")
    head, tail = (_trimmed_span(text, *spans[name], source, role) for name, role in (("e1", "head"), ("e2", "tail")))
    return text, head, tail


def _span_from_json(text: str, value: Any, role: str, source: str) -> EntitySpan:
    """[start, end] or {"start": .., "end": .., "type"?: .., "text"?: ..}: character offsets, end exclusive."""
    given_text, entity_type = None, None
    if isinstance(value, dict) and {"start", "end"} <= set(value):
        start, end, given_text, entity_type = value["start"], value["end"], value.get("text"), value.get("type")
    elif isinstance(value, list) and len(value) == 2:
        start, end = value
    else:
        raise HomofitError(f"{source}: data.columns.{role} must be [start, end] or {{\"start\": .., \"end\": ..}} "
                           f"(character offsets, end exclusive), got {value!r}.")
    if not all(isinstance(offset, int) and not isinstance(offset, bool) for offset in (start, end)) or not (
            0 <= start < end <= len(text)):
        raise HomofitError(f"{source}: the {role} span [{start!r}, {end!r}) is not inside the text "
                           f"({len(text)} characters; offsets count characters, end exclusive).")
    if given_text is not None and text[start:end] != given_text:
        raise HomofitError(f"{source}: the {role} span [{start}, {end}) reads {text[start:end]!r} in the text, but "
                           f"the record says {given_text!r}; check the offsets (end is exclusive).")
    span = _trimmed_span(text, start, end, source, role)
    return EntitySpan(span.start, span.end, _optional_str(entity_type))


def _trimmed_span(text: str, start: int, end: int, source: str, role: str) -> EntitySpan:
    """The span without surrounding white space; an empty or blank span is an error."""
    start, end = strip_span(text, start, end)
    if start == end:
        raise HomofitError(f"{source}: the {role} is empty; mark at least one character.")
    return EntitySpan(start, end)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None


def _is_semeval_file(path: Path) -> bool:
    for line in open_text(path):
        if line.strip():
            return SEMEVAL_SENTENCE.match(line) is not None
    return False
