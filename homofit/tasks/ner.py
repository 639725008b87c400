"""Named-entity recognition: token classification over words, scored by seqeval at entity level."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.config import StrictModel
from homofit.data.readers import detect_format, read_conll_sentences, read_jsonl, unknown_format
from homofit.data.tagging import SCHEMES, spans_from_iob2, to_iob2
from homofit.data.windows import IGNORE_INDEX, align_labels_to_subwords, word_windows
from homofit.errors import HomofitError
from homofit.heads import TokenLabelHead
from homofit.tasks import Task, register
from homofit.textfiles import input_path, text_lines

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from homofit.config import DataConfig
    from homofit.outcomes import Outcomes

WORD_PATTERN = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]", re.UNICODE)


class NerConfig(StrictModel):
    type: Literal["ner"] = "ner"
    scheme: Literal["IOB1", "IOB2", "BIOES"] = Field("IOB2", description="Tag scheme of the input files.")
    label_names: list[str] | None = Field(None, description="Tag names for data whose tags are integers.")


@dataclass
class NerExample:
    tokens: list[str]
    tags: list[str] | None
    source: str
    text: str | None = None
    offsets: list[tuple[int, int]] | None = None


@dataclass
class NerPrediction:
    tags: list[str]
    unscored: int = 0
    scores: list[float] = field(default_factory=list)


@register
class NerTask(Task):
    name: ClassVar[str] = "ner"
    config_type: ClassVar[type] = NerConfig
    headline_metric: ClassVar[str] = "f1"
    headline_metrics: ClassVar[tuple[str, ...]] = ("precision", "recall", "f1")
    starter: ClassVar[dict[str, Any]] = {
        "data": {"train": "data/train.conll", "dev": "data/dev.conll", "test": "data/test.conll",
                 "columns": {"token": 0, "tag": -1}},
        "train": {"early_stopping": {"metric": "f1", "patience": 3}}}

    head = TokenLabelHead()

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[NerExample]:
        file_format = detect_format(path, data.format)
        if file_format == "conll":
            return self._read_conll(path, data.columns)
        if file_format == "jsonl":
            return self._read_jsonl(path, data.columns)
        if file_format == "unknown":
            raise unknown_format(path, "ner", ("conll", "jsonl"))
        raise HomofitError(f"{path}: NER reads CoNLL columns or JSONL, not '{file_format}'; set data.format to "
                           "conll or jsonl.")

    def _read_conll(self, path: Path, columns: dict[str, int | str]) -> list[NerExample]:
        token_column = _column_index(columns, "token", 0)
        tag_column = _column_index(columns, "tag", -1)
        examples = []
        for sentence in read_conll_sentences(path):
            tokens, tags = [], []
            for cells, line in zip(sentence.cells, sentence.lines):
                token_at, tag_at = _cell_index(token_column, cells), _cell_index(tag_column, cells)
                if token_at is None or tag_at is None or token_at == tag_at:  # e.g. a lone token: 0 and -1 meet
                    raise HomofitError(
                        f"{path}:{line}: expected a token in column {token_column} and a tag in column "
                        f"{tag_column}, found {len(cells)} column(s): {cells!r}. Set data.columns.token/tag."
                    )
                tokens.append(cells[token_at])
                tags.append(cells[tag_at])
            examples.append(NerExample(tokens, self._to_iob2(tags, path, sentence.lines),
                                       f"{path}:{sentence.lines[0]}"))
        return examples

    def _read_jsonl(self, path: Path, columns: dict[str, int | str], labeled: bool = True) -> list[NerExample]:
        tokens_key = str(columns.get("tokens", "tokens"))
        tags_key = str(columns.get("tags", "tags"))
        examples = []
        for line, record in read_jsonl(path):
            if tokens_key not in record:
                raise HomofitError(f"{path}:{line}: no '{tokens_key}' field; set data.columns.tokens.")
            tokens = record[tokens_key]
            if not isinstance(tokens, list) or not all(isinstance(token, (str, int, float)) for token in tokens):
                raise HomofitError(f"{path}:{line}: '{tokens_key}' must be a list of token strings, not "
                                   f"{json.dumps(tokens)[:40]}.")
            tokens = [str(token) for token in tokens]
            tags = record.get(tags_key)
            if tags is None and labeled:
                raise HomofitError(f"{path}:{line}: no '{tags_key}' field; training and scoring need a tag for every "
                                   "token (set data.columns.tags to the field's name).")
            if tags is not None and not isinstance(tags, list):
                raise HomofitError(f"{path}:{line}: '{tags_key}' must be a list with one tag per token.")
            if tags is not None:
                tags = self._tag_names(tags, path, line)
                if len(tags) != len(tokens):
                    raise HomofitError(f"{path}:{line}: {len(tokens)} tokens but {len(tags)} tags.")
                tags = self._to_iob2(tags, path, [line] * len(tags))
            examples.append(NerExample(tokens, tags, f"{path}:{line}"))
        return examples

    def _tag_names(self, tags: list[Any], path: Path, line: int) -> list[str]:
        if all(isinstance(tag, str) for tag in tags):
            return tags
        names = self.config.label_names
        if names is None and not all(isinstance(tag, (str, int)) and not isinstance(tag, bool) for tag in tags):
            raise HomofitError(f"{path}:{line}: tags must be tag names (strings) or integer ids with "
                               f"task.label_names, not {json.dumps(tags)[:60]}.")
        if names is None:
            raise HomofitError(f"{path}:{line}: tags are integers; list their names in task.label_names.")
        try:
            ids = [int(tag) for tag in tags]
        except (TypeError, ValueError):
            ids = [-1]
        if any(not 0 <= index < len(names) for index in ids):  # -1 would quietly pick the last name
            raise HomofitError(f"{path}:{line}: tag ids {tags} do not fit task.label_names ({len(names)} names).")
        return [names[index] for index in ids]

    def _to_iob2(self, tags: list[str], path: Path, lines: list[int]) -> list[str]:
        for tag, line in zip(tags, lines):
            try:
                to_iob2([tag], "BIOES")
            except ValueError as error:
                raise HomofitError(f"{path}:{line}: {error}.") from None
            try:
                to_iob2([tag], self.config.scheme)
            except ValueError as error:
                schemes = ", ".join(SCHEMES)
                raise HomofitError(f"{path}:{line}: {error}; set task.scheme to one of {schemes}.") from None
        return to_iob2(tags, self.config.scheme)

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[NerExample]:
        path = input_path(path_or_text)
        if path is not None:
            file_format = detect_format(path, data.format)
            if file_format == "jsonl" and path.suffix != ".txt":
                return self._read_jsonl(path, data.columns, labeled=False)
            if file_format == "conll" and path.suffix != ".txt":
                return self.read(path, data.model_copy(update={"format": file_format}))
            lines = list(text_lines(path))
        else:
            lines = path_or_text.splitlines()
        return [_example_from_text(line, f"line {number}") for number, line in enumerate(lines, 1) if line.strip()]

    def initialize(self, train_examples: list[NerExample], tokenizer: PreTrainedTokenizerBase,
                   previous_state: dict[str, Any] | None) -> list[str]:
        """The tags of the training data: O, then B- and I- of each entity type; a checkpoint's first."""
        previous = (previous_state or {}).get("labels")
        seen = {tag for example in train_examples for tag in example.tags or []}
        types = sorted({tag[2:] for tag in seen if tag != "O"})
        found = ["O"] + [f"{prefix}-{entity_type}" for entity_type in types for prefix in ("B", "I")]
        if not previous:
            self.labels = found
            return []
        new = [label for label in found if label not in previous]
        self.labels = [*previous, *new]
        return new

    def encode(self, examples: list[NerExample], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        from homofit.model import special_token_frame

        prefix, suffix = special_token_frame(tokenizer)
        budget = data.max_length - len(prefix) - len(suffix)
        label_ids = {label: index for index, label in enumerate(self.labels)}
        encoded = tokenizer([example.tokens for example in examples], is_split_into_words=True,
                            add_special_tokens=False)
        features = []
        for example_index, example in enumerate(examples):
            subwords: list[list[int]] = [[] for _ in example.tokens]
            for token_id, word_id in zip(encoded["input_ids"][example_index], encoded.word_ids(example_index)):
                if word_id is not None:
                    subwords[word_id].append(token_id)
            word_labels = [label_ids.get(tag, IGNORE_INDEX) for tag in example.tags] if example.tags else None
            for window in word_windows([len(ids) for ids in subwords], budget, data.stride):
                input_ids, word_ids = list(prefix), [None] * len(prefix)
                for word in range(window.start, window.end):
                    ids = subwords[word][:budget]
                    input_ids += ids
                    word_ids += [word] * len(ids)
                input_ids += suffix
                word_ids += [None] * len(suffix)
                feature = {
                    "example_index": example_index,
                    "input_ids": input_ids,
                    "word_ids": word_ids,
                    "owned": (window.own_start, window.own_end),
                }
                if word_labels is not None:
                    feature["labels"] = align_labels_to_subwords(word_ids, [*word_labels, IGNORE_INDEX])
                features.append(feature)
        return features

    def decode(self, examples: list[NerExample], features: list[dict], outputs: list[Any]) -> list[NerPrediction]:
        """Each word takes the label its first subword got in the window that owns the word."""
        label_of: list[list[int | None]] = [[None] * len(example.tokens) for example in examples]
        score_of: list[list[float]] = [[0.0] * len(example.tokens) for example in examples]
        for feature, (indices, scores) in zip(features, outputs):
            own_start, own_end = feature["owned"]
            previous = None
            for position, word in enumerate(feature["word_ids"]):
                if word is not None and word != previous and own_start <= word < own_end:
                    label_of[feature["example_index"]][word] = int(indices[position])
                    score_of[feature["example_index"]][word] = float(scores[position])
                previous = word
        predictions = []
        for labels, scores in zip(label_of, score_of):
            tags = _repair_iob2(["O" if label is None else self.labels[label] for label in labels])
            predictions.append(NerPrediction(tags, sum(label is None for label in labels), scores))
        return predictions

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[NerExample], predictions: list[NerPrediction]) -> dict[str, Any]:
        from homofit.metrics.entities import entity_report

        gold = [example.tags or [] for example in examples]
        return entity_report(gold, [prediction.tags for prediction in predictions],
                             sum(p.unscored for p in predictions))

    def format_report(self, report: dict[str, Any]) -> str:
        from homofit.metrics.entities import format_entity_report

        return format_entity_report(report)

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong and metric counts from scored prediction records (`homofit compare`)."""
        from homofit.outcomes import tagging_outcomes

        return tagging_outcomes(records)

    def prediction_records(self, examples: list[NerExample], predictions: list[NerPrediction]) -> list[dict[str, Any]]:
        records = []
        for example, prediction in zip(examples, predictions):
            entities = []
            for span in spans_from_iob2(prediction.tags):
                entity: dict[str, Any] = {
                    "label": span.label,
                    "start_token": span.start,
                    "end_token": span.end,
                    "text": " ".join(example.tokens[span.start : span.end]),
                    "score": round(min(prediction.scores[span.start : span.end]), 4),
                }
                if example.offsets is not None:
                    entity["start"] = example.offsets[span.start][0]
                    entity["end"] = example.offsets[span.end - 1][1]
                    entity["text"] = example.text[entity["start"] : entity["end"]]
                entities.append(entity)
            record: dict[str, Any] = {"source": example.source, "tokens": example.tokens, "tags": prediction.tags}
            if example.tags is not None:
                record["gold_tags"] = example.tags
            if example.text is not None:
                record["text"] = example.text
            record["entities"] = entities
            records.append(record)
        return records

    def input_text(self, example: NerExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return " ".join(example.tokens)


def _column_index(columns: dict[str, int | str], key: str, default: int) -> int:
    unknown = set(columns) - {"token", "tag", "tokens", "tags"}
    if unknown:
        raise HomofitError(f"data.columns: unknown key(s) {sorted(unknown)} for NER; use token/tag (CoNLL) or "
                           "tokens/tags (JSONL).")
    value = columns.get(key, default)
    if not isinstance(value, int):
        raise HomofitError(f"data.columns.{key}: CoNLL columns are chosen by index (0 = first, -1 = last), "
                           f"got '{value}'.")
    return value


def _cell_index(column: int, cells: list[str]) -> int | None:
    """The non-negative index that `column` (which may count from the end) picks in `cells`, if any."""
    index = column + len(cells) if column < 0 else column
    return index if 0 <= index < len(cells) else None


def _example_from_text(text: str, source: str) -> NerExample:
    matches = list(WORD_PATTERN.finditer(text))
    return NerExample(
        tokens=[match.group() for match in matches],
        tags=None,
        source=source,
        text=text,
        offsets=[(match.start(), match.end()) for match in matches],
    )


def _repair_iob2(tags: list[str]) -> list[str]:
    """A predicted I-X that does not continue an X entity starts one: the usual reading of model output."""
    repaired = []
    for index, tag in enumerate(tags):
        if tag.startswith("I-") and (index == 0 or repaired[-1][2:] != tag[2:] or repaired[-1] == "O"):
            tag = "B-" + tag[2:]
        repaired.append(tag)
    return repaired
