"""homofit.data.tagging: scheme conversion to IOB2 and reading entity spans."""

from __future__ import annotations

import pytest

from homofit.data.tagging import Span, spans_from_iob2, to_iob2


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        # An entity opens with I-; B- only marks a second entity right after one of the same type.
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),
        (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
        (["O", "I-ORG", "O", "I-ORG"], ["O", "B-ORG", "O", "B-ORG"]),
        (["B-MISC"], ["B-MISC"]),
        (["I-creative-work", "I-creative-work"], ["B-creative-work", "I-creative-work"]),
        ([], []),
    ],
)
def test_iob1_to_iob2(iob1: list[str], iob2: list[str]) -> None:
    assert to_iob2(iob1, "IOB1") == iob2


@pytest.mark.parametrize(
    ("bioes", "iob2"),
    [
        (["S-PER", "O"], ["B-PER", "O"]),
        (["B-LOC", "E-LOC"], ["B-LOC", "I-LOC"]),
        (["B-LOC", "I-LOC", "E-LOC", "S-LOC"], ["B-LOC", "I-LOC", "I-LOC", "B-LOC"]),
        (["S-PER", "S-PER"], ["B-PER", "B-PER"]),
        (["B-PER", "E-PER", "B-PER", "E-PER"], ["B-PER", "I-PER", "B-PER", "I-PER"]),
        (["S-ORG", "B-PER", "E-PER", "O"], ["B-ORG", "B-PER", "I-PER", "O"]),
    ],
)
def test_bioes_to_iob2(bioes: list[str], iob2: list[str]) -> None:
    assert to_iob2(bioes, "BIOES") == iob2


def test_iob2_is_kept_as_is() -> None:
    tags = ["B-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert to_iob2(tags, "IOB2") == tags


@pytest.mark.parametrize(
    ("tags", "scheme", "message"),
    [
        (["O", "S-PER"], "IOB2", "tag 'S-PER' is not valid IOB2 (prefixes B/I only)"),
        (["E-PER"], "IOB1", "tag 'E-PER' is not valid IOB1 (prefixes B/I only)"),
        (["PER"], "BIOES", "tag 'PER' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S"),
        (["B-"], "IOB2", "tag 'B-' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S"),
        (["X-PER"], "IOB2", "tag 'X-PER' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S"),
        (["o"], "IOB2", "tag 'o' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S"),
        ([""], "IOB2", "tag '' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S"),
    ],
)
def test_invalid_tags(tags: list[str], scheme: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        to_iob2(tags, scheme)
    assert str(error.value) == message


def test_spans_from_iob2() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-creative-work", "I-creative-work"]
    assert spans_from_iob2(tags) == [
        Span(0, 2, "PER"), Span(3, 4, "LOC"), Span(4, 6, "LOC"), Span(6, 8, "creative-work"),
    ]


def test_spans_strict_reading_of_stray_i() -> None:
    # Strict IOB2 (seqeval mode="strict"): an I- without its B-, or of another type, starts nothing.
    assert spans_from_iob2(["I-PER", "O", "B-PER", "I-LOC", "I-LOC", "O", "I-ORG"]) == [Span(2, 3, "PER")]


def test_spans_at_the_edges() -> None:
    assert spans_from_iob2([]) == []
    assert spans_from_iob2(["O", "O"]) == []
    assert spans_from_iob2(["B-X"]) == [Span(0, 1, "X")]
    assert spans_from_iob2(["O", "B-X", "I-X"]) == [Span(1, 3, "X")]
