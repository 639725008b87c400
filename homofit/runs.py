"""`homofit runs`: the runs under a folder, with their task, model, state, steps, scores and time."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from homofit.errors import HomofitError

MAX_DEPTH = 3  # runs sit in output.dir, or one or two folders deeper (seeds/seed-1, sweep/trial-0003)


@dataclass
class RunSummary:
    path: str
    task: str | None
    model: str | None
    status: str
    step: int | None
    total_steps: int | None
    metric: str | None
    best: float | None
    best_step: int | None
    test: float | None
    started: str | None
    seconds: float | None
    error: str | None = None


def find_runs(root: Path) -> list[Path]:
    """Run directories under `root` (a folder with meta.json and checkpoints/), `root` itself included."""
    if not root.is_dir():
        raise HomofitError(f"{root}: no such folder; give the folder that holds the runs (output.dir, default runs).")
    found = []

    def visit(folder: Path, depth: int) -> None:
        if (folder / "meta.json").is_file() and (folder / "checkpoints").is_dir():
            found.append(folder)
            return
        if depth < MAX_DEPTH:
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.name.startswith("."):
                    visit(child, depth + 1)

    visit(root, 0)
    return found


def summarize_run(root: Path) -> RunSummary:
    """What status.json, meta.json and the reports say of one run. A run whose status says running but whose
    process is gone from this host was killed (status `died`)."""
    status = _read_json(root / "status.json")
    meta = _read_json(root / "meta.json")
    state = status.get("status") or _guess_state(root)
    if state == "running" and status.get("host") == socket.gethostname() and not _alive(status.get("pid")):
        state = "died"
    started = status.get("started") or meta.get("started")
    end = status.get("finished") or status.get("updated")
    seconds = _seconds_between(started, end) if state != "running" else _seconds_between(started, None)
    test = status.get("test")
    if test is None:
        report = _read_json(root / "reports" / "test.json")
        metric = status.get("metric")
        test = report.get(metric) if metric else None
    return RunSummary(str(root), status.get("task"), status.get("model"), state, status.get("step"),
                      status.get("total_steps"), status.get("metric"), status.get("best"), status.get("best_step"),
                      test, started, seconds, status.get("error") if state in {"failed", "interrupted"} else None)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _guess_state(root: Path) -> str:
    """Runs without status.json (older ones): finished when the test or dev report was written."""
    reports = root / "reports"
    return "finished" if (reports / "test.json").is_file() or (reports / "dev.json").is_file() else "unknown"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if start is None:
        return None
    try:
        begin = time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%S%z"))
        finish = time.mktime(time.strptime(end, "%Y-%m-%dT%H:%M:%S%z")) if end else time.time()
    except ValueError:
        return None
    return max(0.0, finish - begin)


def list_runs(root: Path) -> list[RunSummary]:
    return [summarize_run(path) for path in find_runs(root)]


def runs_as_json(runs: list[RunSummary]) -> str:
    return json.dumps([asdict(run) for run in runs], indent=2) + "\n"


def print_runs(console: Any, runs: list[RunSummary], root: Path) -> None:
    from rich.table import Table

    if not runs:
        console.print(f"no runs under {root}")
        return
    table = Table(title=f"runs under {root}")
    for column in ("task", "model", "status", "steps", "best dev", "test", "time", "path"):
        table.add_column(column, justify="right" if column in {"steps", "best dev", "test", "time"} else "left")
    colors = {"finished": "green", "running": "cyan", "interrupted": "yellow", "failed": "red", "died": "red"}
    for run in runs:
        steps = f"{run.step}/{run.total_steps}" if run.total_steps else (str(run.step) if run.step is not None else "-")
        best = f"{run.metric} {run.best:.4f} @{run.best_step}" if run.best is not None else "-"
        test = f"{run.test:.4f}" if isinstance(run.test, float) else "-"
        status = f"[{colors.get(run.status, 'white')}]{run.status}[/]"
        table.add_row(run.task or "-", _short(run.model), status, steps, best, test, _duration(run.seconds),
                      _relative(run.path))
    console.print(table)
    for run in runs:
        if run.error:
            console.print(f"{_relative(run.path)}: {run.status}: {run.error}", highlight=False, markup=False)


def _short(model: str | None) -> str:
    if not model:
        return "-"
    return model if len(model) <= 40 else "…" + model[-39:]


def _relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"
