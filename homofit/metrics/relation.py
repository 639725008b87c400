"""Relation classification scores, including the official SemEval-2010 Task 8 score.

The official scorer (semeval2010_task8_scorer-v1.2.pl) scores three ways; its official score is the third:
  (i)   (2*9+1)-way: every directed label (`Cause-Effect(e1,e2)`) is its own class;
  (ii)  (9+1)-way, direction ignored: `Cause-Effect(e1,e2)` and `Cause-Effect(e2,e1)` are one class;
  (iii) (9+1)-way with direction: classes are relation types, but a prediction of the right type in the
        wrong direction counts as wrong. It still counts against the type's precision: P = correct /
        (predicted as the type in the right direction or for another gold type + wrong direction).
Each way gives per-class P/R/F1 and their macro average over the gold classes except the negative label
(`Other`), and a micro average that pools the same classes. Labels without a direction suffix (other data
sets) make (iii) the plain macro-F1 over every class but the negative one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from homofit.metrics import precision_recall_f1
from homofit.metrics.classification import (
    format_confusion_matrix,
    format_scores_table,
    single_label_report,
)

DIRECTION = re.compile(r"\(e[12],e[12]\)$")

Way = Literal["labels", "types", "types_with_direction"]


def relation_type(label: str) -> str:
    """`Cause-Effect(e2,e1)` -> `Cause-Effect`; a label without a direction stays as it is."""
    return DIRECTION.sub("", label)


def semeval_scores(gold: Sequence[str], predicted: Sequence[str], negative_label: str | None,
                   way: Way) -> dict[str, Any]:
    """Per-class and averaged P/R/F1 computed exactly as the official scorer does for one of its three ways."""
    as_class = (lambda label: label) if way == "labels" else relation_type
    correct: Counter[str] = Counter()
    proposed: Counter[str] = Counter()
    wrong_direction: Counter[str] = Counter()
    support: Counter[str] = Counter()
    for gold_label, predicted_label in zip(gold, predicted, strict=True):
        gold_class, predicted_class = as_class(gold_label), as_class(predicted_label)
        support[gold_class] += 1
        if way == "types_with_direction" and gold_class == predicted_class and gold_label != predicted_label:
            wrong_direction[gold_class] += 1
            continue
        proposed[predicted_class] += 1
        correct[gold_class] += gold_class == predicted_class
    per_class = {}
    for name in sorted(support):
        # The scorer's precision is 0 when nothing was proposed for the class in the right direction.
        predicted_count = proposed[name] + wrong_direction[name] if proposed[name] else 0
        scores = precision_recall_f1(correct[name], predicted_count, support[name])
        per_class[name] = {**scores, "correct": correct[name], "proposed": proposed[name],
                           "wrong_direction": wrong_direction[name]}
    scored = [name for name in per_class if name != negative_label]
    macro = {metric: sum(per_class[name][metric] for name in scored) / len(scored) if scored else 0.0
             for metric in ("precision", "recall", "f1-score")}
    micro = precision_recall_f1(sum(correct[name] for name in scored),
                                sum(proposed[name] + wrong_direction[name] for name in scored),
                                sum(support[name] for name in scored))
    return {"per_class": per_class, "macro": macro, "micro": micro, "excluded": negative_label}


def relation_report(gold: Sequence[str], predicted: Sequence[str], label_order: Sequence[str],
                    negative_label: str | None) -> dict[str, Any]:
    """Headline keys: `official_macro_f1` (way iii), `micro_f1` (way iii, pooled) and `accuracy` (all examples,
    exact label). Below them: the three ways, the per-label report and the label confusion matrix."""
    official = semeval_scores(gold, predicted, negative_label, "types_with_direction")
    per_label = single_label_report(gold, predicted, label_order)
    return {
        "official_macro_f1": official["macro"]["f1-score"],
        "micro_f1": official["micro"]["f1-score"],
        "accuracy": per_label["accuracy"],
        "official": official,
        "direction_ignored": _averages(semeval_scores(gold, predicted, negative_label, "types")),
        "directed_labels": _averages(semeval_scores(gold, predicted, negative_label, "labels")),
        "per_relation": per_label["per_class"],
        "averages": per_label["averages"],
        "confusion_matrix": per_label["confusion_matrix"],
        "examples": len(gold),
    }


def format_relation_report(report: dict[str, Any]) -> str:
    official = report["official"]
    excluded = f", {official['excluded']} excluded" if official["excluded"] else ""
    lines = [f"Official score (SemEval-2010 Task 8 scorer, (9+1)-way, direction taken into account{excluded})",
             _official_table(official["per_class"]), "",
             (f"macro-averaged F1 = {100 * report['official_macro_f1']:.2f}%    "
              f"micro-averaged F1 = {100 * report['micro_f1']:.2f}%    accuracy = {100 * report['accuracy']:.2f}%"),
             (f"direction ignored: macro-F1 {100 * report['direction_ignored']['macro_f1']:.2f}%    "
              f"each directed label its own class: macro-F1 {100 * report['directed_labels']['macro_f1']:.2f}%"),
             "", "Per relation label",
             format_scores_table(report["per_relation"], report["averages"], report["accuracy"], report["examples"]),
             "", "Confusion matrix (rows: gold label, columns: predicted label)",
             format_confusion_matrix(report["confusion_matrix"]["labels"], report["confusion_matrix"]["matrix"])]
    return "\n".join(lines) + "\n"


def _averages(scores: dict[str, Any]) -> dict[str, float]:
    return {"macro_f1": scores["macro"]["f1-score"], "macro_precision": scores["macro"]["precision"],
            "macro_recall": scores["macro"]["recall"], "micro_f1": scores["micro"]["f1-score"]}


def _official_table(per_class: dict[str, dict[str, Any]]) -> str:
    width = max(len(name) for name in [*per_class, "relation"])
    lines = [f"{'relation':>{width}}  precision    recall  f1-score   correct  proposed  wrong dir   support", ""]
    for name, scores in per_class.items():
        lines.append(f"{name:>{width}}  {scores['precision']:>9.4f} {scores['recall']:>9.4f} "
                     f"{scores['f1-score']:>9.4f} {scores['correct']:>9d} {scores['proposed']:>9d} "
                     f"{scores['wrong_direction']:>10d} {scores['support']:>9d}")
    return "\n".join(lines)
