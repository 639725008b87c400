"""Figures every run directory gets (matplotlib, drawn without a display): learning curves from metrics.jsonl
and a per-class (per-type, per-relation, per-question-type) score chart beside each report that has one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Where each family's report keeps its per-class table: NER per_type, classification per_class, relation
# per_relation, QA by_question_type; each row holds an F1 (f1-score or f1) and a count (support or count).
PER_CLASS_KEYS = ("per_type", "per_class", "per_relation", "by_question_type")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def per_class_rows(report: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(class, F1, count) for each row of the report's per-class table; empty when it has none."""
    table = next((report[key] for key in PER_CLASS_KEYS if isinstance(report.get(key), dict)), None)
    rows = []
    for name, scores in (table or {}).items():
        if not isinstance(scores, dict):
            continue
        score = scores.get("f1-score", scores.get("f1"))
        count = scores.get("support", scores.get("count", 0))
        if isinstance(score, (int, float)):
            rows.append((str(name), float(score), int(count or 0)))
    return rows


def save_per_class_chart(report: dict[str, Any], path: Path, title: str) -> bool:
    """A horizontal bar per class, its F1 (0-1 or 0-100 as the report gives it) and count; returns whether
    the report had a per-class table to draw."""
    rows = per_class_rows(report)
    if not rows:
        return False
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(7.0, max(2.5, 0.35 * len(rows) + 1.2)))
    names = [f"{name} (n={count})" for name, _, count in rows]
    scores = [score for _, score, _ in rows]
    axes.barh(range(len(rows)), scores, color="tab:blue")
    axes.set_yticks(range(len(rows)), labels=names)
    axes.invert_yaxis()
    axes.set_xlim(0, 100 if max(scores, default=0) > 1.0 else 1.0)
    axes.set_xlabel("F1")
    axes.set_title(title)
    for row, score in enumerate(scores):
        axes.text(score, row, f" {score:.2f}", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True


def save_learning_curves(metrics: Path, metric: str, best_step: int | None, path: Path) -> bool:
    """Training loss and the dev metric (and dev loss) against the optimizer step, the best step marked;
    returns whether there was a training event to draw."""
    events = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    train = [(event["step"], event["loss"]) for event in events
             if event.get("event") == "train" and event.get("loss") is not None]
    dev = [event for event in events if event.get("event") == "eval" and event.get("split") == "dev"
           and event.get("step", -1) >= 0]
    if not train:
        return False
    pyplot = _pyplot()
    figure, loss_axes = pyplot.subplots(figsize=(8.0, 4.5))
    loss_axes.plot(*zip(*train), color="tab:blue", label="train loss")
    dev_losses = [(event["step"], event["loss"]) for event in dev if event.get("loss") is not None]
    if dev_losses:
        loss_axes.plot(*zip(*dev_losses), color="tab:blue", linestyle="--", marker="o", label="dev loss")
    loss_axes.set_xlabel("optimizer step")
    loss_axes.set_ylabel("loss")
    handles, labels = loss_axes.get_legend_handles_labels()
    scores = [(event["step"], event[metric]) for event in dev if isinstance(event.get(metric), (int, float))]
    if scores and metric != "loss":
        metric_axes = loss_axes.twinx()
        metric_axes.plot(*zip(*scores), color="tab:orange", marker="o", label=f"dev {metric}")
        metric_axes.set_ylabel(f"dev {metric}")
        more_handles, more_labels = metric_axes.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if best_step is not None:
        loss_axes.axvline(best_step, color="tab:green", linestyle=":")
        handles.append(loss_axes.lines[-1])
        labels.append(f"best (step {best_step})")
    loss_axes.legend(handles, labels, loc="best", fontsize=8)
    loss_axes.set_title("learning curves")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True
