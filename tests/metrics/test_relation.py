"""homofit.metrics.relation: the official SemEval-2010 Task 8 score and its two sibling ways, on hand-made labels."""

from __future__ import annotations

import json

import pytest

from homofit.metrics.relation import format_relation_report, relation_report, relation_type, semeval_scores

CE12, CE21, CW12, CW21, MT12 = ("Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)",
                                "Component-Whole(e2,e1)", "Message-Topic(e1,e2)")
PAIRS = [
    (CE12, CE12),     # right
    (CE12, CE21),     # right relation, wrong direction
    (CE21, "Other"),  # missed
    (CW12, CW12),     # right
    (CW21, CE12),     # wrong relation
    ("Other", CW21),  # a relation where there is none
    ("Other", "Other"),
    (MT12, "Other"),  # missed
]
GOLD = [gold for gold, _ in PAIRS]
PREDICTED = [predicted for _, predicted in PAIRS]


def test_relation_type_drops_the_direction() -> None:
    assert [relation_type(label) for label in (CE21, "Other", "per:city_of_birth")] == [
        "Cause-Effect", "Other", "per:city_of_birth"]


def test_official_way_counts_a_wrong_direction_against_precision_and_recall() -> None:
    scores = semeval_scores(GOLD, PREDICTED, "Other", "types_with_direction")
    per_class = scores["per_class"]
    # Cause-Effect: 1 right; proposed: #1 and #5 (for a Component-Whole); 1 wrong direction: P = 1 / (2 + 1)
    assert per_class["Cause-Effect"] == {"precision": pytest.approx(1 / 3), "recall": pytest.approx(1 / 3),
                                         "f1-score": pytest.approx(1 / 3), "support": 3, "correct": 1, "proposed": 2,
                                         "wrong_direction": 1}
    assert per_class["Component-Whole"] == {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 2,
                                            "correct": 1, "proposed": 2, "wrong_direction": 0}
    assert per_class["Message-Topic"]["f1-score"] == 0.0
    assert per_class["Other"]["precision"] == pytest.approx(1 / 3)
    # macro over the three gold relation types, Other left out
    assert scores["macro"] == {"precision": pytest.approx(5 / 18), "recall": pytest.approx(5 / 18),
                               "f1-score": pytest.approx(5 / 18)}
    # micro: 2 right of 3 + 2 + 0 proposed (wrong direction included), of 3 + 2 + 1 gold
    assert scores["micro"] == {"precision": pytest.approx(2 / 5), "recall": pytest.approx(2 / 6),
                               "f1-score": pytest.approx(2 * 0.4 * (1 / 3) / (0.4 + 1 / 3)), "support": 6}


def test_direction_ignored_and_directed_label_ways() -> None:
    undirected = semeval_scores(GOLD, PREDICTED, "Other", "types")
    assert undirected["per_class"]["Cause-Effect"]["f1-score"] == pytest.approx(2 / 3)  # 2 right of 3 proposed, 3 gold
    assert undirected["macro"]["f1-score"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    directed = semeval_scores(GOLD, PREDICTED, "Other", "labels")
    assert sorted(directed["per_class"]) == sorted({*GOLD})
    # the 5 directed gold labels other than Other: F1 0.5, 0, 1, 0, 0
    assert directed["macro"]["f1-score"] == pytest.approx((0.5 + 0 + 1 + 0 + 0) / 5)


def test_precision_is_zero_when_only_wrong_directions_were_proposed() -> None:
    scores = semeval_scores([CE12, CE12], [CE21, "Other"], "Other", "types_with_direction")
    assert scores["per_class"]["Cause-Effect"]["precision"] == 0.0
    assert scores["micro"]["precision"] == 0.0


def test_without_a_negative_label_every_class_is_averaged() -> None:
    scores = semeval_scores(["a", "b", "no"], ["a", "no", "no"], None, "types_with_direction")
    assert scores["macro"]["f1-score"] == pytest.approx((1 + 0 + 2 / 3) / 3)


def test_relation_report_headline() -> None:
    report = relation_report(GOLD, PREDICTED, [CE12, CE21, CW12, CW21, MT12, "Other"], "Other")
    assert [key for key, value in report.items() if isinstance(value, float)] == [
        "official_macro_f1", "micro_f1", "accuracy"]
    assert report["official_macro_f1"] == pytest.approx(5 / 18)
    assert report["accuracy"] == pytest.approx(3 / 8)
    assert report["direction_ignored"]["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 3)
    assert report["confusion_matrix"]["labels"] == [CE12, CE21, CW12, CW21, MT12, "Other"]
    assert report["confusion_matrix"]["matrix"][0] == [1, 1, 0, 0, 0, 0]
    assert report["per_relation"][CW12] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}
    assert json.loads(json.dumps(report)) == report
    text = format_relation_report(report)
    assert "macro-averaged F1 = 27.78%    micro-averaged F1 = 36.36%    accuracy = 37.50%" in text
    assert "   Cause-Effect     0.3333    0.3333    0.3333         1         2          1         3" in text
