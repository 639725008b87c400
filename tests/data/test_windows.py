"""homofit.data.windows: windows of whole words over long sentences, and labels on first subwords."""

from __future__ import annotations

import itertools

import pytest

from homofit.data.windows import IGNORE_INDEX, Window, align_labels_to_subwords, word_windows


def owners(windows: list[Window], words: int) -> list[int]:
    """For each word, how many windows score it."""
    counts = [0] * words
    for window in windows:
        assert window.start <= window.own_start <= window.own_end <= window.end
        for word in range(window.own_start, window.own_end):
            counts[word] += 1
    return counts


def test_short_sentence_is_one_window() -> None:
    assert word_windows([1, 2, 1], max_tokens=6, stride=2) == [Window(0, 3, 0, 3)]


def test_sentence_that_fills_the_budget_exactly_is_one_window() -> None:
    assert word_windows([2, 2, 2], max_tokens=6, stride=2) == [Window(0, 3, 0, 3)]


def test_long_sentence_is_split_and_each_word_owned_once() -> None:
    counts = [1, 2, 1, 1, 3, 1, 1, 2, 1, 1]  # 14 subwords
    windows = word_windows(counts, max_tokens=6, stride=2)
    # (0, 4) shares words 2-3 (2 subwords) with (2, 6), which shares word 5 with (5, 10); ownership splits each overlap.
    assert windows == [Window(0, 4, 0, 3), Window(2, 6, 3, 5), Window(5, 10, 5, 10)]
    for window in windows:
        assert sum(counts[window.start : window.end]) <= 6
    assert owners(windows, len(counts)) == [1] * len(counts)


@pytest.mark.parametrize("stride", [0, 1, 3, 5, 40])
@pytest.mark.parametrize("counts", [[1] * 25, [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], [2, 0, 2, 0, 3, 1, 0, 7, 1]])
def test_every_word_owned_by_exactly_one_window(counts: list[int], stride: int) -> None:
    windows = word_windows(counts, max_tokens=6, stride=stride)
    assert owners(windows, len(counts)) == [1] * len(counts)
    assert windows[0].start == 0 and windows[-1].end == len(counts)
    for window in windows:
        assert sum(min(count, 6) for count in counts[window.start : window.end]) <= 6
    for before, after in itertools.pairwise(windows):
        assert before.start < after.start <= before.end


def test_stride_zero_gives_disjoint_windows() -> None:
    windows = word_windows([1] * 10, max_tokens=4, stride=0)
    assert windows == [Window(0, 4, 0, 4), Window(4, 8, 4, 8), Window(8, 10, 8, 10)]


def test_stride_shares_whole_words() -> None:
    # Consecutive windows share the last words of the one before, up to `stride` subwords.
    windows = word_windows([1] * 10, max_tokens=4, stride=2)
    assert [(window.start, window.end) for window in windows] == [(0, 4), (2, 6), (4, 8), (6, 10)]


def test_word_longer_than_the_budget_gets_a_window_of_its_own() -> None:
    windows = word_windows([2, 10, 2], max_tokens=6, stride=2)
    assert windows == [Window(0, 1, 0, 1), Window(1, 2, 1, 2), Window(2, 3, 2, 3)]
    assert word_windows([10], max_tokens=6, stride=2) == [Window(0, 1, 0, 1)]


def test_words_without_subwords_still_belong_to_a_window() -> None:
    windows = word_windows([0, 1, 0, 0, 1], max_tokens=6, stride=2)
    assert windows == [Window(0, 5, 0, 5)]
    assert word_windows([0, 0], max_tokens=6, stride=2) == [Window(0, 2, 0, 2)]


def test_empty_sentence_is_one_empty_window() -> None:
    assert word_windows([], max_tokens=6, stride=2) == [Window(0, 0, 0, 0)]


def test_align_labels_to_first_subwords() -> None:
    word_ids = [None, 0, 0, 1, 2, 2, 2, None]
    assert align_labels_to_subwords(word_ids, [5, 6, 7]) == [
        IGNORE_INDEX, 5, IGNORE_INDEX, 6, 7, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX,
    ]


def test_align_labels_window_starting_mid_sentence() -> None:
    # A window's word ids need not start at 0; words missing from the window take no label.
    assert align_labels_to_subwords([None, 3, 4, 4, None, None], [0, 0, 0, 8, 9]) == [
        IGNORE_INDEX, 8, 9, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX,
    ]
    assert IGNORE_INDEX == -100
