"""Per-example outcomes of a model on a scored split, read from its prediction records: whether each example
is right, and the counts from which a task's headline metrics are computed on any subset of examples.

Metrics are functions of column sums of `stats`, so a bootstrap resample is one weighted sum and one call, and
the value on all examples equals the task's own report (entity-level F1 from pooled span counts, macro-F1 from
per-class counts, not averages of per-example scores)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Metric = Callable[[np.ndarray], np.ndarray]  # column sums (..., k) -> metric values (...)


@dataclass
class Outcomes:
    ids: list[str]  # what identifies each example across runs on the same data
    correct: np.ndarray  # bool per example: the task's "right on this example"
    stats: np.ndarray  # (examples, k) counts the metrics are computed from
    metrics: dict[str, Metric]  # headline metrics, each from column sums of stats
    labels: list[list[str]]  # gold labels of each example, for the per-label breakdown of errors
    inputs: list[str]  # the example as a user reads it
    gold: list[str]
    predicted: list[str]
    notes: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        return float(self.metrics[metric](self.stats.sum(axis=0)))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where there is nothing to divide by (sklearn's zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def _f1(true_positive: np.ndarray, predicted: np.ndarray, support: np.ndarray) -> np.ndarray:
    precision, recall = _ratio(true_positive, predicted), _ratio(true_positive, support)
    return _ratio(2 * precision * recall, precision + recall)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _ratio((values * mask).sum(axis=-1), mask.sum(axis=-1))


def example_id(record: dict[str, Any], position: int) -> str:
    """A record's example: its id, else the line of its source file (`path:line` -> `line`), else its position."""
    if record.get("id") is not None:
        return str(record["id"])
    source = str(record.get("source", ""))
    head, _, line = source.rpartition(":")
    return line if head and line.isdigit() else source or str(position)


# -- the families -----------------------------------------------------------------------------------------


def tagging_outcomes(records: list[dict[str, Any]]) -> Outcomes:
    """NER: a sentence is right when its predicted entities are exactly the gold ones; precision, recall and
    F1 pool span counts (strict IOB2), as seqeval's micro average does."""
    from homofit.data.tagging import spans_from_iob2

    stats, correct, labels, gold_text, predicted_text = [], [], [], [], []
    for record in records:
        _require(record, "gold_tags", "NER")
        gold = {(span.start, span.end, span.label) for span in spans_from_iob2(record["gold_tags"])}
        predicted = {(span.start, span.end, span.label) for span in spans_from_iob2(record["tags"])}
        stats.append([len(gold & predicted), len(predicted), len(gold)])
        correct.append(gold == predicted)
        tokens = record["tokens"]
        labels.append(sorted({label for _, _, label in gold | predicted if (_, _, label) not in gold & predicted}
                             or {label for _, _, label in gold}) or ["O"])
        gold_text.append(_entities(gold, tokens))
        predicted_text.append(_entities(predicted, tokens))
    metrics: dict[str, Metric] = {
        "precision": lambda s: _ratio(s[..., 0], s[..., 1]),
        "recall": lambda s: _ratio(s[..., 0], s[..., 2]),
        "f1": lambda s: _f1(s[..., 0], s[..., 1], s[..., 2]),
    }
    return Outcomes(_ids(records), np.array(correct), np.array(stats, dtype=float).reshape(-1, 3), metrics, labels,
                    [record.get("text") or " ".join(record["tokens"]) for record in records], gold_text, predicted_text)


def _entities(spans: set[tuple[int, int, str]], tokens: list[str]) -> str:
    return "; ".join(f"{label}: {' '.join(tokens[start:end])}" for start, end, label in sorted(spans)) or "(none)"


def label_outcomes(records: list[dict[str, Any]], label_order: list[str]) -> Outcomes:
    """Single-label classification: right when the label is. Accuracy, and macro/weighted F1 over the labels
    present in gold or predictions, as the reports compute them."""
    _require(records[0], "gold_label", "classification")
    gold = [str(record["gold_label"]) for record in records]
    predicted = [str(record["label"]) for record in records]
    labels = list(dict.fromkeys([*label_order, *gold, *predicted]))
    index = {label: position for position, label in enumerate(labels)}
    count = len(labels)
    stats = np.zeros((len(records), 2 + 3 * count))  # right, 1, then per label: true positive, predicted, support
    for row, (gold_label, predicted_label) in enumerate(zip(gold, predicted)):
        stats[row, :2] = gold_label == predicted_label, 1.0
        stats[row, 2 + index[gold_label]] += gold_label == predicted_label
        stats[row, 2 + count + index[predicted_label]] += 1
        stats[row, 2 + 2 * count + index[gold_label]] += 1

    def per_label(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return s[..., 2 : 2 + count], s[..., 2 + count : 2 + 2 * count], s[..., 2 + 2 * count :]

    def macro_f1(s: np.ndarray) -> np.ndarray:
        true_positive, predicted_count, support = per_label(s)
        return _masked_mean(_f1(true_positive, predicted_count, support), (support + predicted_count) > 0)

    def weighted_f1(s: np.ndarray) -> np.ndarray:
        true_positive, predicted_count, support = per_label(s)
        return _ratio((_f1(true_positive, predicted_count, support) * support).sum(axis=-1), support.sum(axis=-1))

    metrics: dict[str, Metric] = {"accuracy": _accuracy, "macro_f1": macro_f1, "weighted_f1": weighted_f1}
    return Outcomes(_ids(records), stats[:, 0].astype(bool), stats, metrics, [[label] for label in gold],
                    [_record_text(record) for record in records], gold, predicted)


def multi_label_outcomes(records: list[dict[str, Any]], label_order: list[str]) -> Outcomes:
    """Multi-label classification: right when the predicted set is the gold set (subset accuracy); macro and
    weighted F1 over the labels present, each label a yes/no decision."""
    _require(records[0], "gold_labels", "classification")
    gold = [set(record["gold_labels"]) for record in records]
    predicted = [set(record["labels"]) for record in records]
    labels = list(dict.fromkeys([*label_order, *sorted(set().union(*gold, *predicted))]))
    count = len(labels)
    stats = np.zeros((len(records), 2 + 3 * count))
    for row, (gold_set, predicted_set) in enumerate(zip(gold, predicted)):
        stats[row, :2] = gold_set == predicted_set, 1.0
        for column, label in enumerate(labels):
            stats[row, 2 + column] = label in gold_set and label in predicted_set
            stats[row, 2 + count + column] = label in predicted_set
            stats[row, 2 + 2 * count + column] = label in gold_set

    def per_label_f1(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        support, predicted_count = s[..., 2 + 2 * count :], s[..., 2 + count : 2 + 2 * count]
        return _f1(s[..., 2 : 2 + count], predicted_count, support), support, predicted_count

    def macro_f1(s: np.ndarray) -> np.ndarray:
        f1, support, predicted_count = per_label_f1(s)
        return _masked_mean(f1, (support + predicted_count) > 0)

    def weighted_f1(s: np.ndarray) -> np.ndarray:
        f1, support, _ = per_label_f1(s)
        return _ratio((f1 * support).sum(axis=-1), support.sum(axis=-1))

    return Outcomes(_ids(records), stats[:, 0].astype(bool), stats,
                    {"accuracy": _accuracy, "macro_f1": macro_f1, "weighted_f1": weighted_f1},
                    [sorted(gold_set) or ["(none)"] for gold_set in gold], [_record_text(record) for record in records],
                    [", ".join(sorted(gold_set)) for gold_set in gold],
                    [", ".join(sorted(predicted_set)) for predicted_set in predicted])


def _accuracy(s: np.ndarray) -> np.ndarray:
    return _ratio(s[..., 0], s[..., 1])


def relation_outcomes(records: list[dict[str, Any]], negative: str | None) -> Outcomes:
    """Relation extraction: right when the directed label is. The official SemEval-2010 Task 8 score (macro-F1
    over relation types, direction taken into account, `negative` excluded) and its micro-F1, from the
    official scorer's per-type counts; and accuracy."""
    from homofit.metrics.relation import relation_type

    _require(records[0], "gold_label", "relation")
    gold = [str(record["gold_label"]) for record in records]
    predicted = [str(record["label"]) for record in records]
    types = sorted({relation_type(label) for label in [*gold, *predicted]})
    position = {name: index for index, name in enumerate(types)}
    count = len(types)
    # right, 1, then per type: correct, proposed, support, proposed in the wrong direction
    stats = np.zeros((len(records), 2 + 4 * count))
    for row, (gold_label, predicted_label) in enumerate(zip(gold, predicted)):
        gold_type, predicted_type = relation_type(gold_label), relation_type(predicted_label)
        stats[row, :2] = gold_label == predicted_label, 1.0
        stats[row, 2 + 2 * count + position[gold_type]] += 1
        if gold_type == predicted_type and gold_label != predicted_label:
            stats[row, 2 + 3 * count + position[gold_type]] += 1
            continue
        stats[row, 2 + count + position[predicted_type]] += 1
        stats[row, 2 + position[gold_type]] += gold_type == predicted_type
    scored = np.array([name != negative for name in types], dtype=float)

    def blocks(s: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(s[..., 2 + part * count : 2 + (part + 1) * count] for part in range(4))

    def official_macro_f1(s: np.ndarray) -> np.ndarray:
        correct, proposed, support, wrong = blocks(s)
        predicted_count = np.where(proposed > 0, proposed + wrong, 0)  # the scorer's rule: 0 if none proposed
        return _masked_mean(_f1(correct, predicted_count, support), (support > 0) * scored)

    def micro_f1(s: np.ndarray) -> np.ndarray:
        correct, proposed, support, wrong = blocks(s)
        pooled = (support > 0) * scored  # the gold types but the negative one, as the scorer pools them
        return _f1((correct * pooled).sum(axis=-1), ((proposed + wrong) * pooled).sum(axis=-1),
                   (support * pooled).sum(axis=-1))

    metrics: dict[str, Metric] = {"official_macro_f1": official_macro_f1, "micro_f1": micro_f1, "accuracy": _accuracy}
    return Outcomes(_ids(records), stats[:, 0].astype(bool), stats, metrics, [[label] for label in gold],
                    [_record_text(record) for record in records], gold, predicted)


def qa_outcomes(records: list[dict[str, Any]]) -> Outcomes:
    """Extractive QA: a question is right on an exact match; exact match and F1 (0-100) are question means."""
    from homofit.metrics.squad import ScoredQuestion, question_scores

    _require(records[0], "gold_answers", "QA")
    # scored again from the answers (the records round F1 to 4 places), as the report scores them
    scores = [question_scores(ScoredQuestion(record["question"], record["gold_answers"], record["answer"]), "v2")
              for record in records]
    stats = np.array([[exact, f1, 1.0] for exact, f1 in scores]).reshape(-1, 3)
    metrics: dict[str, Metric] = {"exact_match": lambda s: 100 * _ratio(s[..., 0], s[..., 2]),
                                  "f1": lambda s: 100 * _ratio(s[..., 1], s[..., 2])}
    return Outcomes(_ids(records), stats[:, 0] == 1.0, stats, metrics,
                    [[_question_word(record["question"])] for record in records],
                    [record["question"] for record in records],
                    [" | ".join(record["gold_answers"]) or "(no answer)" for record in records],
                    [record["answer"] or "(no answer)" for record in records])


def _question_word(question: str) -> str:
    from homofit.metrics.squad import question_type

    return question_type(question)


def generation_outcomes(records: list[dict[str, Any]], metric: str, fail_below: float) -> Outcomes:
    """Generation: each output's sentence-level score against its references (chrF with sacrebleu, or ROUGE-L
    F1 with rouge-score; 0-100); an output is right when it scores at least `fail_below`."""
    _require(records[0], "references", "generation")
    if metric == "sentence_chrf":
        from sacrebleu.metrics import CHRF

        chrf = CHRF()
        scores = [chrf.sentence_score(record["generated"], record["references"]).score for record in records]
    else:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        scores = [100 * max(scorer.score(reference, record["generated"])["rougeL"].fmeasure
                            for reference in record["references"]) for record in records]
    stats = np.array([[score, 1.0] for score in scores]).reshape(-1, 2)
    metrics: dict[str, Metric] = {metric: lambda s: _ratio(s[..., 0], s[..., 1])}
    return Outcomes(_ids(records), stats[:, 0] >= fail_below, stats, metrics, [["all"] for _ in records],
                    [_record_text(record) for record in records],
                    [" | ".join(record["references"]) for record in records],
                    [record["generated"] for record in records],
                    notes={"fail_below": fail_below, "references": [record["references"] for record in records]})


def _record_text(record: dict[str, Any]) -> str:
    for key in ("text", "input", "question"):
        value = record.get(key)
        if isinstance(value, str):
            return value + (f" || {record['text_pair']}" if record.get("text_pair") else "")
        if value is not None:
            return str(value)[:500]
    return ""


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [example_id(record, position) for position, record in enumerate(records)]


def _require(record: dict[str, Any], key: str, family: str) -> None:
    from homofit.errors import HomofitError

    if key not in record:
        raise HomofitError(f"the {family} predictions carry no '{key}': they were made on data without gold "
                           "labels, so there is nothing to compare; compare predictions on dev or test data.")
