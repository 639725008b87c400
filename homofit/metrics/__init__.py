"""Scorers and report formatting, one module per kind of output; the arithmetic they share is here."""

from __future__ import annotations

from typing import Any


def precision_recall_f1(true_positive: int, predicted: int, support: int) -> dict[str, Any]:
    """Scores of one class; a ratio with nothing to divide by is 0 (sklearn's zero_division=0)."""
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1-score": f1, "support": support}
