"""What the console shows: progress while training and the tables at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from homofit.train import TrainSummary


def train_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True,
    )


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The top-level numbers of a report: its headline metrics."""
    return {key: value for key, value in report.items() if isinstance(value, float)}


def print_scores(console: Console, scores: dict[str, dict[str, Any]]) -> None:
    metrics = list(dict.fromkeys(key for report in scores.values() for key in headline(report)))
    table = Table(title="scores")
    table.add_column("split")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for split, report in scores.items():
        table.add_row(split, *(f"{report[metric]:.4f}" if metric in report else "-" for metric in metrics))
    console.print(table)


def print_train_summary(console: Console, summary: TrainSummary) -> None:
    print_scores(console, summary.scores)
    fit = summary.fit
    if fit.best_step is not None:
        ended = "stopped early: no gain in the dev score for train.early_stopping.patience evaluations" \
            if fit.stopped_early else "trained every step"
        console.print(f"best dev score {fit.best_score:.4f} at step {fit.best_step} of {fit.steps}; {ended}")
    else:
        console.print(f"trained {fit.steps} steps; no dev set, so checkpoints/best is the final model")
    run = summary.run
    table = Table(title="written", show_header=False)
    table.add_row("run", str(run.root))
    table.add_row("best checkpoint", str(run.checkpoint("best")))
    for name, folder in (("reports", run.reports), ("predictions", run.predictions)):
        if folder.is_dir() and any(folder.iterdir()):  # only what was written
            table.add_row(name, str(folder))
    table.add_row("metrics", str(run.metrics))
    console.print(table)
