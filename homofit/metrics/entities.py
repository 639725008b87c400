"""Entity-level scores (seqeval, strict IOB2) and a token-level report, for tagging tasks."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Any

from homofit.metrics import precision_recall_f1


def entity_report(gold: list[list[str]], predicted: list[list[str]], unscored_words: int = 0) -> dict[str, Any]:
    """seqeval's entity-level report in strict IOB2 mode, plus token-level scores.

    Headline keys (top level): the entity-level micro `precision`, `recall` and `f1`.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    with warnings.catch_warnings():  # no entity anywhere: seqeval's macro average is a mean of nothing
        warnings.simplefilter("ignore", RuntimeWarning)
        entity_scores = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True,
                                              zero_division=0)
    averages = {name: entity_scores.pop(f"{name} avg") for name in ("micro", "macro", "weighted")}
    micro = averages["micro"]
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "per_type": {name: _plain(scores) for name, scores in sorted(entity_scores.items())},
        "averages": {name: _plain(scores) for name, scores in averages.items()},
        "token_level": token_report(gold, predicted),
        "sentences": len(gold),
        "unscored_words": unscored_words,
    }


def token_report(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Per-tag precision/recall/F1 over single tokens (not entities), and token accuracy."""
    true_positive: Counter[str] = Counter()
    gold_count: Counter[str] = Counter()
    predicted_count: Counter[str] = Counter()
    correct = total = 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        for gold_tag, predicted_tag in zip(gold_tags, predicted_tags):
            gold_count[gold_tag] += 1
            predicted_count[predicted_tag] += 1
            total += 1
            if gold_tag == predicted_tag:
                true_positive[gold_tag] += 1
                correct += 1
    per_tag = {}
    for tag in sorted(set(gold_count) | set(predicted_count)):
        per_tag[tag] = precision_recall_f1(true_positive[tag], predicted_count[tag], gold_count[tag])
    return {"accuracy": correct / total if total else 0.0, "per_tag": per_tag}


def format_entity_report(report: dict[str, Any]) -> str:
    """The classic text layout: one row per entity type, then the averages, then the token-level table."""
    lines = ["Entity level (seqeval, strict IOB2)", _table(report["per_type"], report["averages"])]
    lines.append(f"unscored words: {report['unscored_words']} (counted as O)")
    lines.append("")
    token_level = report["token_level"]
    lines.append(f"Token level (each token's tag on its own, not entities); accuracy {token_level['accuracy']:.4f}")
    lines.append(_table(token_level["per_tag"], {}))
    return "\n".join(lines) + "\n"


def _table(rows: dict[str, dict[str, float]], averages: dict[str, dict[str, float]]) -> str:
    width = max([len(name) for name in [*rows, "weighted avg"]])
    header = f"{'':>{width}}  precision    recall  f1-score   support"
    body = [header, ""]
    for name, scores in rows.items():
        body.append(_row(name, scores, width))
    if averages:
        body.append("")
        for name, scores in averages.items():
            body.append(_row(f"{name} avg", scores, width))
    return "\n".join(body)


def _row(name: str, scores: dict[str, float], width: int) -> str:
    return (f"{name:>{width}}  {scores['precision']:>9.4f} {scores['recall']:>9.4f} "
            f"{scores['f1-score']:>9.4f} {int(scores['support']):>9d}")


def _plain(scores: dict[str, Any]) -> dict[str, float]:
    """Python numbers; NaN (an average over no entity type) becomes 0.0 as zero_division=0 reads it: JSON has no NaN."""
    return {key: (int(value) if key == "support" else 0.0 if math.isnan(value) else float(value))
            for key, value in scores.items()}
