"""homofit.metrics.entities: seqeval's strict entity scores and the token-level report, on hand-made tags."""

from __future__ import annotations

import json

import pytest

from homofit.metrics.entities import entity_report, format_entity_report, token_report

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
# PER 0-2 right, LOC taken for ORG, ORG right, second PER missed: 2 of 3 predicted right, 2 of 4 gold found.
PREDICTED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]


def test_micro_scores() -> None:
    report = entity_report(GOLD, PREDICTED, unscored_words=3)
    assert report["precision"] == pytest.approx(2 / 3)
    assert report["recall"] == pytest.approx(2 / 4)
    assert report["f1"] == pytest.approx(4 / 7)  # 2PR / (P + R) = (2/3) / (7/6)
    assert report["sentences"] == 2
    assert report["unscored_words"] == 3


def test_per_type_and_averages() -> None:
    report = entity_report(GOLD, PREDICTED)
    assert report["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1},
        "ORG": {"precision": 0.5, "recall": 1.0, "f1-score": pytest.approx(2 / 3), "support": 1},
        "PER": {"precision": 1.0, "recall": 0.5, "f1-score": pytest.approx(2 / 3), "support": 2},
    }
    assert report["averages"]["macro"]["f1-score"] == pytest.approx(4 / 9)
    assert report["averages"]["micro"]["support"] == 4
    assert report["averages"]["weighted"]["precision"] == pytest.approx((0 * 1 + 0.5 * 1 + 1.0 * 2) / 4)


def test_headline_metrics_are_the_only_top_level_floats() -> None:
    report = entity_report(GOLD, PREDICTED)
    assert [key for key, value in report.items() if isinstance(value, float)] == ["precision", "recall", "f1"]
    assert json.loads(json.dumps(report)) == report


def test_strict_mode_ignores_a_stray_inside_tag() -> None:
    # conlleval would read the predicted I-PER as an entity; strict IOB2 does not.
    report = entity_report([["B-PER", "O"]], [["I-PER", "O"]])
    assert (report["precision"], report["recall"], report["f1"]) == (0.0, 0.0, 0.0)
    perfect = entity_report([["B-PER", "I-PER", "B-PER"]], [["B-PER", "I-PER", "B-PER"]])
    assert (perfect["precision"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)


def test_entity_boundaries_must_match_exactly() -> None:
    report = entity_report([["B-LOC", "I-LOC", "I-LOC"]], [["B-LOC", "I-LOC", "O"]])
    assert (report["precision"], report["recall"]) == (0.0, 0.0)


def test_no_entities_anywhere_gives_zeros_not_nan() -> None:
    report = entity_report([["O", "O"], []], [["O", "O"], []])
    assert (report["precision"], report["recall"], report["f1"]) == (0.0, 0.0, 0.0)
    assert report["per_type"] == {}
    assert report["averages"]["macro"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    json.dumps(report, allow_nan=False)  # valid JSON: raises on NaN


def test_token_report() -> None:
    report = token_report(GOLD, PREDICTED)
    assert report["accuracy"] == pytest.approx(5 / 7)
    assert report["per_tag"]["O"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                      "f1-score": pytest.approx(0.8), "support": 2}
    assert report["per_tag"]["B-ORG"] == {"precision": 0.5, "recall": 1.0, "f1-score": pytest.approx(2 / 3),
                                          "support": 1}
    assert report["per_tag"]["B-LOC"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert sorted(report["per_tag"]) == ["B-LOC", "B-ORG", "B-PER", "I-PER", "O"]
    assert token_report([], []) == {"accuracy": 0.0, "per_tag": {}}


def test_format_entity_report() -> None:
    text = format_entity_report(entity_report(GOLD, PREDICTED, unscored_words=2))
    lines = text.splitlines()
    assert lines[0] == "Entity level (seqeval, strict IOB2)"
    assert "unscored words: 2 (counted as O)" in lines
    assert "Token level (each token's tag on its own, not entities); accuracy 0.7143" in lines
    assert [line.split() for line in lines if line.strip().startswith(("PER", "micro avg"))] == [
        ["PER", "1.0000", "0.5000", "0.6667", "2"],
        ["micro", "avg", "0.6667", "0.5000", "0.5714", "4"],
    ]
    assert [line.split()[0] for line in lines if line.strip().startswith(("B-", "I-", "O "))] == [
        "B-LOC", "B-ORG", "B-PER", "I-PER", "O",
    ]
