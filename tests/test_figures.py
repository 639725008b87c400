"""The figures of a run directory: learning curves from metrics.jsonl, and per-class charts from reports."""

from __future__ import annotations

import json
from pathlib import Path

from homofit.figures import per_class_rows, save_learning_curves, save_per_class_chart

PNG = b"\x89PNG\r\n\x1a\n"


def test_per_class_rows_read_every_family_table() -> None:
    ner = {"f1": 0.5, "per_type": {"person": {"precision": 1.0, "recall": 0.5, "f1-score": 0.667, "support": 4}}}
    classification = {"per_class": {"neg": {"f1-score": 0.8, "support": 10}, "pos": {"f1-score": 0.9, "support": 12}}}
    relation = {"per_relation": {"Cause-Effect": {"f1-score": 0.7, "support": 3}}}
    qa = {"by_question_type": {"what": {"count": 7, "exact_match": 50.0, "f1": 62.5}}}
    assert per_class_rows(ner) == [("person", 0.667, 4)]
    assert per_class_rows(classification) == [("neg", 0.8, 10), ("pos", 0.9, 12)]
    assert per_class_rows(relation) == [("Cause-Effect", 0.7, 3)]
    assert per_class_rows(qa) == [("what", 62.5, 7)]
    assert per_class_rows({"bleu": 12.0, "chrf": 40.0}) == []  # generation: nothing to chart


def test_charts_are_drawn_only_when_there_is_something_to_draw(tmp_path: Path) -> None:
    assert save_per_class_chart({"per_class": {"a": {"f1-score": 0.5, "support": 2}}}, tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)
    assert not save_per_class_chart({"bleu": 1.0}, tmp_path / "none.png", "t")
    assert not (tmp_path / "none.png").exists()

    metrics = tmp_path / "metrics.jsonl"
    events = [{"event": "eval", "split": "dev", "step": 0, "loss": 2.0, "f1": 0.1},
              {"event": "train", "step": 5, "loss": 1.5}, {"event": "eval", "split": "dev", "step": 5, "loss": 1.2,
                                                           "f1": 0.4},
              {"event": "train", "step": 10, "loss": None}, {"event": "eval", "split": "test", "step": -1, "f1": 0.3}]
    metrics.write_text("".join(json.dumps(event) + "\n" for event in events))
    assert save_learning_curves(metrics, "f1", 5, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)
    metrics.write_text(json.dumps(events[0]) + "\n")  # no training event yet
    assert not save_learning_curves(metrics, "f1", None, tmp_path / "empty.png")
