"""Windows over long word sequences and word labels aligned to subwords.

A sentence longer than the model's input is never cut: it is split into overlapping windows of whole
words, and each word is scored in exactly one window (the one where it sits furthest from an edge).
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100  # the label that cross-entropy skips


@dataclass(frozen=True)
class Window:
    """Words [start, end) go into the model; words [own_start, own_end) are scored from this window."""

    start: int
    end: int
    own_start: int
    own_end: int


def word_windows(subword_counts: list[int], max_tokens: int, stride: int) -> list[Window]:
    """Split words into windows of at most `max_tokens` subwords that share about `stride` tokens.

    A word longer than `max_tokens` by itself is counted as `max_tokens` (its first subword, the one that
    carries its label, always fits).
    """
    counts = [min(count, max_tokens) for count in subword_counts]
    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        end, total = start, 0
        while end < len(counts) and total + counts[end] <= max_tokens:
            total += counts[end]
            end += 1
        bounds.append((start, end))
        if end >= len(counts):
            break
        next_start, shared = end, 0
        while next_start - 1 > start and shared + counts[next_start - 1] <= stride:
            next_start -= 1
            shared += counts[next_start]
        start = next_start
    windows = []
    for index, (start, end) in enumerate(bounds):
        own_start = start if index == 0 else (start + bounds[index - 1][1]) // 2
        own_end = end if index == len(bounds) - 1 else (bounds[index + 1][0] + end) // 2
        windows.append(Window(start, end, own_start, own_end))
    return windows


def align_labels_to_subwords(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Each word's label goes to its first subword; later subwords and special tokens get IGNORE_INDEX."""
    labels = []
    previous = None
    for word_id in word_ids:
        if word_id is None or word_id == previous:
            labels.append(IGNORE_INDEX)
        else:
            labels.append(word_labels[word_id])
        previous = word_id
    return labels
