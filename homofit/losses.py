"""Losses as (sum, units): the loop adds both over an accumulation window and divides once, so a unit
(a token, a word, an example) weighs the same whatever micro-batch it falls in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homofit.data.windows import IGNORE_INDEX

if TYPE_CHECKING:
    import torch


def summed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                         weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy summed over the labels that are not IGNORE_INDEX, and their count.

    With class weights the count is the summed weight of those labels, which makes sum / count the
    weighted mean that `cross_entropy(weight=...)` computes.
    """
    import torch

    logits = logits.float().reshape(-1, logits.size(-1))
    labels = labels.reshape(-1)
    total = torch.nn.functional.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE_INDEX,
                                              reduction="sum")
    kept = labels != IGNORE_INDEX
    if weight is None:
        return total, kept.sum()
    return total, (weight[labels.clamp(min=0)] * kept).sum()
