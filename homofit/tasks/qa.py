"""Extractive question answering (SQuAD v1.1 / v2.0): start and end logits over the context's tokens.

A context longer than the model's input is split into overlapping windows (`data.stride` tokens shared),
using the fast tokenizer's offset mapping to tie every token to its characters. Training labels the
answer's first and last token in each window that holds the whole answer, and the CLS token in the others
(unanswerable questions too). Decoding searches the n best starts and ends of every window, merges the
windows of a question, and maps the best span back to the exact characters of the context.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.config import StrictModel
from homofit.data.readers import detect_format, strip_span
from homofit.data.squad import JSONL_KEYS, QaExample, read_qa_jsonl, read_squad_json
from homofit.errors import HomofitError
from homofit.heads import SpanHead
from homofit.tasks import Task, register
from homofit.textfiles import input_path

if TYPE_CHECKING:
    import numpy
    from transformers import PreTrainedTokenizerBase

    from homofit.config import DataConfig
    from homofit.outcomes import Outcomes

log = logging.getLogger("homofit")


class QaConfig(StrictModel):
    type: Literal["qa"] = "qa"
    version: Literal["auto", "v1", "v2"] = Field(
        "auto", description="v2 allows 'no answer'; auto: v2 when the training data has unanswerable questions."
    )
    n_best: int = Field(20, ge=1, description="Best start and end tokens searched in each window.")
    max_answer_length: int = Field(30, ge=1, description="Longest answer in subword tokens.")
    null_threshold: float = Field(
        0.0, description="v2: answer nothing when the null score exceeds the best span's score by more than this."
    )


@dataclass
class WindowLogits:
    """One window of a question: the context characters of each token (None elsewhere) and its logits."""

    offsets: list[tuple[int, int] | None]
    cls_index: int
    start_logits: numpy.ndarray
    end_logits: numpy.ndarray


@dataclass
class QaPrediction:
    text: str  # '' when the model answers nothing (v2) or no span was possible
    start: int | None  # character offsets of `text` in the context, end exclusive
    end: int | None
    score: float  # probability of this answer among the n best candidates (softmax of start + end logits)
    best_span: str = ""  # the best non-empty span, whether or not it was chosen
    null_score_diff: float | None = None  # v2: null score minus the best span's score


@dataclass
class EncodeStats:
    questions: int = 0
    windows: int = 0
    questions_cut: int = 0  # questions longer than half of max_length, cut to fit
    answers_cut: int = 0  # windows where the answer crosses the window's edge (labelled CLS)
    answers_lost: int = 0  # answerable questions whose answer fits in no window

    def describe(self) -> str:
        return (f"qa: {self.questions} questions -> {self.windows} windows; {self.answers_cut} windows cut through "
                f"an answer (labelled CLS); {self.answers_lost} answers fit in no window; "
                f"{self.questions_cut} questions cut to half of data.max_length")


@register
class QaTask(Task):
    name: ClassVar[str] = "qa"
    config_type: ClassVar[type] = QaConfig
    headline_metric: ClassVar[str] = "f1"
    headline_metrics: ClassVar[tuple[str, ...]] = ("exact_match", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact",
                                                   "NoAns_f1")
    starter: ClassVar[dict[str, Any]] = {
        "data": {"train": "data/train.json", "dev": "data/dev.json", "test": "data/test.json", "max_length": 384,
                 "stride": 128},
        "train": {"epochs": 2, "batch_size": 32, "early_stopping": {"metric": "f1", "patience": 2}}}

    head = SpanHead()

    def __init__(self, config: QaConfig, state: dict[str, Any]) -> None:
        super().__init__(config, state)
        self.version: str = state.get("version", config.version)
        self.last_encode_stats = EncodeStats()

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[QaExample]:
        file_format = detect_format(path, data.format)
        if file_format == "json":
            return read_squad_json(path)
        if file_format == "jsonl":
            return read_qa_jsonl(path, _jsonl_keys(data.columns))
        raise HomofitError(f"{path}: question answering reads SQuAD JSON or JSON Lines, not '{file_format}'; "
                           "set data.format: json or jsonl.")

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[QaExample]:
        path = input_path(path_or_text)
        if path is not None:
            return self.read(path, data)
        keys = _jsonl_keys(data.columns)
        examples = []
        for number, line in enumerate(path_or_text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            has_texts = isinstance(record, dict) and all(isinstance(record.get(keys[name]), str)
                                                         for name in ("question", "context"))
            if not has_texts:
                raise HomofitError(f"INPUT line {number}: question answering predicts from a JSONL file or JSON lines "
                                   f"with '{keys['question']}' and '{keys['context']}', e.g. "
                                   '{"question": "Who?", "context": "..."}.')
            examples.append(QaExample(str(record.get(keys["id"], f"line-{number}")), record[keys["question"]],
                                      record[keys["context"]], None, "", f"line {number}"))
        return examples

    def initialize(self, train_examples: list[QaExample], tokenizer: PreTrainedTokenizerBase,
                   previous_state: dict[str, Any] | None) -> list[str]:
        """QA has no label set; the training data fixes the SQuAD version instead (v2 when a question has no
        answer), unless a checkpoint being trained again already fixed it."""
        if previous_state and previous_state.get("version") and self.version == "auto":
            self.version = previous_state["version"]
        unanswerable = sum(example.answers == [] for example in train_examples)
        if self.version == "auto":
            self.version = "v2" if unanswerable else "v1"
        elif self.version == "v1" and unanswerable:
            raise HomofitError(f"task.version: v1, but {unanswerable} training questions have no answer; "
                               "set task.version: v2 (or auto) to train and score 'no answer'.")
        return []

    def encode(self, examples: list[QaExample], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        """Each question becomes one or more windows over its context; see the module docstring."""
        stats = EncodeStats(questions=len(examples))
        question_first = tokenizer.padding_side == "right"
        questions = self._fit_questions([example.question.lstrip() for example in examples], tokenizer, data, stats)
        contexts = [example.context for example in examples]
        encoded = tokenizer(
            questions if question_first else contexts,
            contexts if question_first else questions,
            truncation="only_second" if question_first else "only_first",
            max_length=data.max_length,
            stride=data.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        context_sequence = 1 if question_first else 0
        has_answer_window: set[int] = set()
        features = []
        for window_index, input_ids in enumerate(encoded["input_ids"]):
            example_index = encoded["overflow_to_sample_mapping"][window_index]
            sequence_ids = encoded.sequence_ids(window_index)
            offsets = [tuple(offset) if sequence == context_sequence else None
                       for offset, sequence in zip(encoded["offset_mapping"][window_index], sequence_ids)]
            cls_index = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
            feature: dict[str, Any] = {"example_index": example_index, "input_ids": input_ids, "offsets": offsets,
                                       "cls_index": cls_index}
            if "token_type_ids" in encoded:
                feature["token_type_ids"] = encoded["token_type_ids"][window_index]
            example = examples[example_index]
            if example.answers is not None:
                span = None
                if example.answers:
                    answer = example.answers[0]
                    start_char, end_char = strip_span(example.context, answer.start, answer.end)
                    span = answer_token_span(offsets, start_char, end_char)
                    if span is None and window_overlaps(offsets, start_char, end_char):
                        stats.answers_cut += 1
                    if span is not None:
                        has_answer_window.add(example_index)
                feature["start_positions"], feature["end_positions"] = span or (cls_index, cls_index)
            features.append(feature)
        stats.windows = len(features)
        stats.answers_lost = sum(1 for index, example in enumerate(examples)
                                 if example.answers and index not in has_answer_window)
        self.last_encode_stats = stats
        log.info(stats.describe())
        return features

    def _fit_questions(self, questions: list[str], tokenizer: PreTrainedTokenizerBase, data: DataConfig,
                       stats: EncodeStats) -> list[str]:
        """Questions cut after half of max_length tokens, so the context always keeps room in a window; checks
        that the stride leaves each window new context to show."""
        limit = data.max_length // 2
        encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        fitted = []
        for question, offsets in zip(questions, encoded["offset_mapping"]):
            if len(offsets) > limit:
                stats.questions_cut += 1
                question = question[: offsets[limit - 1][1]]
            fitted.append(question)
        longest = min(limit, max((len(offsets) for offsets in encoded["offset_mapping"]), default=0))
        room = data.max_length - tokenizer.num_special_tokens_to_add(pair=True) - longest
        if data.stride >= room:
            raise HomofitError(f"data.stride: {data.stride} tokens shared between windows, but a window holds only "
                               f"{room} context tokens next to the longest question ({longest} tokens); "
                               f"set data.stride below {room} or raise data.max_length.")
        return fitted

    def decode(self, examples: list[QaExample], features: list[dict], outputs: list[Any]) -> list[QaPrediction]:
        windows: dict[int, list[WindowLogits]] = defaultdict(list)
        for feature, (start_logits, end_logits) in zip(features, outputs):
            windows[feature["example_index"]].append(
                WindowLogits(feature["offsets"], feature["cls_index"], start_logits, end_logits))
        return [
            best_answer(example.context, windows[index], self.config.n_best, self.config.max_answer_length,
                        allow_null=self.version == "v2", null_threshold=self.config.null_threshold)
            for index, example in enumerate(examples)
        ]

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[QaExample], predictions: list[QaPrediction]) -> dict[str, Any]:
        from homofit.metrics.squad import ScoredQuestion, squad_report

        unlabeled = next((example for example in examples if example.answers is None), None)
        if unlabeled is not None:
            raise HomofitError(f"{unlabeled.source}: no answers to score against; eval needs gold answers.")
        version = "v2" if self.version == "v2" or any(not example.answers for example in examples) else "v1"
        items = [ScoredQuestion(example.question, [answer.text for answer in example.answers], prediction.text,
                                prediction.best_span, prediction.null_score_diff)
                 for example, prediction in zip(examples, predictions)]
        return squad_report(items, version)

    def format_report(self, report: dict[str, Any]) -> str:
        from homofit.metrics.squad import format_squad_report

        return format_squad_report(report)

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """Per-example right/wrong and metric counts from scored prediction records (`homofit compare`)."""
        from homofit.outcomes import qa_outcomes

        return qa_outcomes(records)

    def prediction_records(self, examples: list[QaExample], predictions: list[QaPrediction]) -> list[dict[str, Any]]:
        from homofit.metrics.squad import ScoredQuestion, question_scores

        records = []
        for example, prediction in zip(examples, predictions):
            record: dict[str, Any] = {"id": example.id, "question": example.question, "answer": prediction.text,
                                      "start": prediction.start, "end": prediction.end,
                                      "score": round(prediction.score, 4)}
            if prediction.null_score_diff is not None:
                record["null_score_diff"] = round(prediction.null_score_diff, 4)
            if example.answers is not None:
                gold = [answer.text for answer in example.answers]
                exact, f1 = question_scores(ScoredQuestion(example.question, gold, prediction.text), "v2")
                record.update({"gold_answers": gold, "exact_match": exact == 1.0, "f1": round(f1, 4)})
            if example.title:
                record["title"] = example.title
            records.append(record)
        return records

    def input_text(self, example: QaExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return f"{example.question}\n{example.context}" if example.question.strip() else ""

    def state(self) -> dict[str, Any]:
        return {"version": self.version}


# -- windows and offsets (pure functions) -----------------------------------------------------------------


def answer_token_span(offsets: list[tuple[int, int] | None], start_char: int, end_char: int) -> tuple[int, int] | None:
    """First and last token of the characters [start_char, end_char), or None when the window's context does
    not hold all of them (the answer lies outside the window or crosses its edge)."""
    context = [index for index, offset in enumerate(offsets) if offset is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return None
    start = next(index for index in context if offsets[index][1] > start_char)
    end = next(index for index in reversed(context) if offsets[index][0] < end_char)
    return (start, end) if start <= end else None


def window_overlaps(offsets: list[tuple[int, int] | None], start_char: int, end_char: int) -> bool:
    """Whether any context token of the window covers a character of [start_char, end_char)."""
    return any(offset is not None and offset[0] < end_char and offset[1] > start_char for offset in offsets)


def best_answer(context: str, windows: list[WindowLogits], n_best: int, max_answer_length: int, allow_null: bool,
                null_threshold: float) -> QaPrediction:
    """The best span over all windows of one question (start logit + end logit), mapped to context characters.

    Each window offers its `n_best` best starts and ends among its context tokens; a span needs end >= start
    and at most `max_answer_length` tokens. With `allow_null` (v2), the question answers nothing when the null
    score (CLS start + end, the lowest over the windows) beats the best span by more than `null_threshold`.
    """
    import numpy

    spans: dict[tuple[int, int], float] = {}
    null_score = None
    for window in windows:
        context_positions = numpy.array([index for index, offset in enumerate(window.offsets) if offset is not None],
                                        dtype=numpy.int64)
        window_null = float(window.start_logits[window.cls_index] + window.end_logits[window.cls_index])
        null_score = window_null if null_score is None else min(null_score, window_null)
        if not len(context_positions):
            continue
        starts = _top_positions(window.start_logits, context_positions, n_best)
        ends = _top_positions(window.end_logits, context_positions, n_best)
        for start in starts:
            for end in ends:
                if end < start or end - start + 1 > max_answer_length:
                    continue
                characters = (window.offsets[start][0], window.offsets[end][1])
                score = float(window.start_logits[start] + window.end_logits[end])
                if score > spans.get(characters, -numpy.inf):
                    spans[characters] = score
    candidates = sorted(spans.items(), key=lambda item: item[1], reverse=True)[:n_best]
    scores = [score for _, score in candidates] + ([null_score] if allow_null and null_score is not None else [])
    if not scores:
        return QaPrediction("", None, None, 0.0)
    probabilities = numpy.exp(numpy.array(scores) - max(scores))
    probabilities /= probabilities.sum()
    if not candidates:
        return QaPrediction("", None, None, float(probabilities[-1]), "", None)
    (start_char, end_char), best_score = candidates[0]
    best_span = context[start_char:end_char]
    if not allow_null or null_score is None:
        return QaPrediction(best_span, start_char, end_char, float(probabilities[0]), best_span)
    null_score_diff = null_score - best_score
    if null_score_diff > null_threshold:
        return QaPrediction("", None, None, float(probabilities[-1]), best_span, null_score_diff)
    return QaPrediction(best_span, start_char, end_char, float(probabilities[0]), best_span, null_score_diff)


def _top_positions(logits: numpy.ndarray, positions: numpy.ndarray, count: int) -> list[int]:
    """The `count` positions (among `positions`) with the highest logits, best first."""
    import numpy

    values = numpy.asarray(logits)[positions]
    order = numpy.argsort(-values, kind="stable")[:count]
    return positions[order].tolist()


def _jsonl_keys(columns: dict[str, int | str]) -> dict[str, str]:
    unknown = set(columns) - set(JSONL_KEYS)
    if unknown:
        raise HomofitError(f"data.columns: unknown key(s) {sorted(unknown)} for question answering; "
                           f"known: {', '.join(JSONL_KEYS)} (each the name of a JSONL field).")
    keys = {key: columns.get(key, key) for key in JSONL_KEYS}
    for key, value in keys.items():
        if not isinstance(value, str):
            raise HomofitError(f"data.columns.{key}: name a JSONL field, got {value!r}.")
    return keys
