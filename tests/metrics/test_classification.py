"""homofit.metrics.classification: sklearn-style per-class reports and confusion matrices, on hand-made labels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from homofit.metrics.classification import (
    format_classification_report,
    format_confusion_matrix,
    multi_label_report,
    save_confusion_matrix_png,
    single_label_report,
)

# a: 2 of 3 found, none wrongly; b: 1 of 2 found, one b taken for c; c: found, once predicted for a b.
GOLD = ["a", "a", "a", "b", "b", "c"]
PREDICTED = ["a", "a", "b", "b", "c", "c"]


def test_single_label_scores() -> None:
    report = single_label_report(GOLD, PREDICTED, ["a", "b", "c"])
    assert report["per_class"] == {
        "a": {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1-score": pytest.approx(0.8), "support": 3},
        "b": {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 2},
        "c": {"precision": 0.5, "recall": 1.0, "f1-score": pytest.approx(2 / 3), "support": 1},
    }
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["weighted_f1"] == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3 * 1) / 6)
    assert report["averages"]["macro"] == {"precision": pytest.approx(2 / 3),
                                           "recall": pytest.approx((2 / 3 + 0.5 + 1) / 3),
                                           "f1-score": pytest.approx(report["macro_f1"]), "support": 6}
    assert report["confusion_matrix"] == {"labels": ["a", "b", "c"], "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}
    assert report["examples"] == 6


def test_single_label_agrees_with_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    report = single_label_report(GOLD, PREDICTED, ["a", "b", "c"])
    expected = metrics.classification_report(GOLD, PREDICTED, output_dict=True, zero_division=0)
    for label in "abc":
        assert report["per_class"][label] == pytest.approx(expected[label])
    assert report["averages"]["macro"] == pytest.approx(expected["macro avg"])
    assert report["averages"]["weighted"] == pytest.approx(expected["weighted avg"])
    assert report["accuracy"] == pytest.approx(expected["accuracy"])
    assert report["confusion_matrix"]["matrix"] == metrics.confusion_matrix(GOLD, PREDICTED).tolist()


def test_rows_follow_the_task_order_and_cover_only_labels_that_occur() -> None:
    # "z" is a label of the task that neither gold nor predictions use; "d" is a gold label the task lacks.
    report = single_label_report(["c", "a", "d"], ["c", "b", "a"], ["c", "z", "b", "a"])
    assert list(report["per_class"]) == ["c", "b", "a", "d"]
    assert report["confusion_matrix"]["matrix"] == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}


def test_headline_metrics_are_the_only_top_level_floats() -> None:
    for report in (single_label_report(GOLD, PREDICTED, ["a", "b", "c"]),
                   multi_label_report([{"a"}], [{"a"}], ["a"])):
        assert [key for key, value in report.items() if isinstance(value, float)] == [
            "accuracy", "macro_f1", "weighted_f1"]
        assert json.loads(json.dumps(report)) == report


GOLD_SETS = [{"a", "b"}, {"a"}, set(), {"c"}]
PREDICTED_SETS = [{"a"}, {"a", "c"}, set(), {"c"}]


def test_multi_label_scores() -> None:
    report = multi_label_report(GOLD_SETS, PREDICTED_SETS, ["a", "b", "c"])
    assert report["per_class"] == {
        "a": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2},
        "b": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1},
        "c": {"precision": 0.5, "recall": 1.0, "f1-score": pytest.approx(2 / 3), "support": 1},
    }
    assert report["accuracy"] == 0.5  # the empty set and {c} are exactly right
    assert report["averages"]["micro"] == {"precision": 0.75, "recall": 0.75, "f1-score": 0.75, "support": 4}
    assert report["macro_f1"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert report["weighted_f1"] == pytest.approx((1 * 2 + 0 + 2 / 3) / 4)
    assert report["confusion_matrix"]["per_class"] == {"a": [[2, 0], [0, 2]], "b": [[3, 0], [1, 0]],
                                                       "c": [[2, 1], [0, 1]]}


def test_multi_label_agrees_with_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    binarizer = preprocessing.MultiLabelBinarizer(classes=["a", "b", "c"])
    gold, predicted = binarizer.fit_transform(GOLD_SETS), binarizer.transform(PREDICTED_SETS)
    expected = metrics.classification_report(gold, predicted, target_names=["a", "b", "c"], output_dict=True,
                                             zero_division=0)
    report = multi_label_report(GOLD_SETS, PREDICTED_SETS, ["a", "b", "c"])
    for name in ("micro", "macro", "weighted"):
        assert report["averages"][name] == pytest.approx(expected[f"{name} avg"])
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(gold, predicted))
    assert [report["confusion_matrix"]["per_class"][label] for label in "abc"] == \
        metrics.multilabel_confusion_matrix(gold, predicted).tolist()


def test_text_report_layout() -> None:
    text = format_classification_report(single_label_report(GOLD, PREDICTED, ["a", "b", "c"]))
    assert text.splitlines()[:9] == [
        "              precision    recall  f1-score   support",
        "",
        "           a     1.0000    0.6667    0.8000         3",
        "           b     0.5000    0.5000    0.5000         2",
        "           c     0.5000    1.0000    0.6667         1",
        "",
        "    accuracy                         0.6667         6",
        "   macro avg     0.6667    0.7222    0.6556         6",
        "weighted avg     0.7500    0.6667    0.6778         6",
    ]
    assert text.splitlines()[10:] == [
        "Confusion matrix (rows: gold label, columns: predicted label)",
        "gold \\ predicted  a b c",
        "a                 2 1 0",
        "b                 0 1 1",
        "c                 0 0 1",
    ]


def test_confusion_matrix_numbers_long_label_names() -> None:
    text = format_confusion_matrix(["Cause-Effect(e1,e2)", "Other"], [[12, 3], [4, 100]])
    assert text.splitlines() == [
        "gold \\ predicted         0   1",
        "0 Cause-Effect(e1,e2)   12   3",
        "1 Other                  4 100",
    ]


def test_multi_label_text_report_lists_each_labels_decisions() -> None:
    text = format_classification_report(multi_label_report(GOLD_SETS, PREDICTED_SETS, ["a", "b", "c"]))
    assert "   micro avg     0.7500    0.7500    0.7500         4" in text.splitlines()
    assert text.splitlines()[-4:] == ["label       tp      fp      fn      tn",
                                      "a            2       0       0       2",
                                      "b            0       0       1       3",
                                      "c            1       1       0       2"]


def test_png_needs_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert save_confusion_matrix_png(["a", "b"], [[1, 0], [0, 1]], tmp_path / "m.png", "dev") is False
    assert not (tmp_path / "m.png").exists()


def test_png_with_matplotlib(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert save_confusion_matrix_png(["a", "b"], [[5, 1], [2, 7]], tmp_path / "m.png", "dev") is True
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
