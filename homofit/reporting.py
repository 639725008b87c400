"""What the console shows: progress while training and the tables at the end."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from homofit.train import TrainSummary


@dataclass
class PhaseBar:
    """One phase's line in the display: `advance` as work is done, `update` the text after the count."""

    progress: Progress
    task_id: Any

    def advance(self, amount: int = 1) -> None:
        self.progress.advance(self.task_id, amount)

    def update(self, info: str) -> None:
        self.progress.update(self.task_id, info=info)


class PhaseDisplay:
    """The one progress display of a run: a bar per long phase (tokenizing, training, each evaluation,
    saving), drawn on the console the log lines go to, so rich prints each log line above the bars. Without
    a terminal nothing is drawn; the loop writes plain log lines instead."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=True,
        )

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def __enter__(self) -> PhaseDisplay:  # noqa: PYI034 (typing.Self needs Python 3.11)
        if self.is_terminal:  # piped or in CI rich would still write a blank line on stop
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_terminal:
            self.progress.stop()

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None, info: str = "", completed: int = 0) -> Iterator[PhaseBar]:
        """A bar for the length of the `with` block; removed after, so no stale copy stays on the screen."""
        task_id = self.progress.add_task(name, total=total, completed=completed, info=info)
        if self.is_terminal:
            self.progress.refresh()  # shown at once, however short the phase
        started = time.perf_counter()
        try:
            yield PhaseBar(self.progress, task_id)
        finally:
            self.progress.remove_task(task_id)
            self.last_phase_seconds = time.perf_counter() - started


def print_scores(console: Console, scores: dict[str, dict[str, Any]], headline_metrics: tuple[str, ...]) -> None:
    """A table of each split's headline metrics and loss (those a report holds)."""
    metrics = [key for key in (*headline_metrics, "loss") if any(key in report for report in scores.values())]
    table = Table(title="scores")
    table.add_column("split")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for split, report in scores.items():
        table.add_row(split, *(f"{report[metric]:.4f}" if metric in report else "-" for metric in metrics))
    console.print(table)


def print_train_summary(console: Console, summary: TrainSummary) -> None:
    print_scores(console, summary.scores, summary.headline_metrics)
    fit = summary.fit
    if fit.best_step is not None:
        ended = f"stopped early: no gain in dev {fit.metric} for {fit.patience} evaluations " \
            "(train.early_stopping.patience)" if fit.stopped_early else "trained every step"
        console.print(f"best dev {fit.metric} {fit.best_score:.4f} at step {fit.best_step} of {fit.steps} "
                      f"({'lowest' if fit.mode == 'min' else 'highest'} wins; a tie keeps the later step); {ended}")
    else:
        console.print(f"trained {fit.steps} steps; no dev set, so checkpoints/best is the final model")
    run = summary.run
    table = Table(title="written", show_header=False)
    table.add_row("run", str(run.root))
    table.add_row("best checkpoint", str(run.checkpoint("best")))
    for name, folder in (("reports", run.reports), ("predictions", run.predictions)):
        if folder.is_dir() and any(folder.iterdir()):  # only what was written
            table.add_row(name, str(folder))
    curves = run.report("learning_curves", "png")
    if curves.is_file():
        table.add_row("learning curves", str(curves))
    for split in ("dev", "test"):
        chart = run.reports / f"{split}.per_class.png"
        if chart.is_file():
            table.add_row(f"{split} F1 per class", str(chart))
    table.add_row("metrics", str(run.metrics))
    console.print(table)
