"""The one place that knows the run directory's layout."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homofit.errors import HomofitError


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    def checkpoint(self, name: str) -> Path:
        """`best` or `last`."""
        return self.root / "checkpoints" / name

    def report(self, name: str, suffix: str) -> Path:
        return self.reports / f"{name}.{suffix}"

    def prediction_file(self, split: str) -> Path:
        return self.predictions / f"{split}.jsonl"

    def append_metrics(self, event: dict[str, Any]) -> None:
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def write_status(self, status: str, **fields: Any) -> None:
        """status.json: running, finished, interrupted or failed, with the fields given, replaced atomically so
        a reader never sees half a file. A run killed outright stays `running`; its pid and host tell."""
        import os
        import socket

        document = {"status": status, "pid": os.getpid(), "host": socket.gethostname(),
                    "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    **{key: None if isinstance(value, float) and not math.isfinite(value) else value
                       for key, value in fields.items()}}  # valid JSON: a non-finite loss is written as null
        partial = self.status.with_name(".status.json.partial")
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.status)


def check_writable(path: Path, key: str, folder: bool = True) -> None:
    """Before any work: `path` (a folder to create or fill, or with folder=False a file to create) can be
    written, i.e. it is not a file where a folder belongs and its nearest existing folder is writable."""
    if folder and path.exists() and not path.is_dir():
        raise HomofitError(f"{key} {path}: is a file, not a folder; name a folder (it is created if missing).")
    ancestor = path if folder else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise HomofitError(f"{key} {path}: {ancestor} is a file, not a folder; choose another place.")
    try:  # a real write: permission bits, read-only mounts and pseudo file systems all answer the same way
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as error:
        raise HomofitError(f"{key} {path}: cannot write in {ancestor} ({error.strerror or error}); choose a folder "
                           "you can write, or change its permissions.") from None


NOT_EMPTY = "homofit never overwrites a run. Choose a new folder."


def new_folder(explicit: Path | None, output_dir: Path, prefix: str, option: str = "--run-dir",
               not_empty: str = NOT_EMPTY) -> Path:
    """Where a new run (or seeds or sweep folder) goes: exactly `explicit`, which must be missing or empty, or
    a unique `<prefix>-<time>` under `output_dir`. Nothing is created here."""
    if explicit is not None:
        if explicit.exists() and (not explicit.is_dir() or any(explicit.iterdir())):
            raise HomofitError(f"{option} {explicit}: already exists and is not empty; {not_empty}")
        return explicit
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", prefix)
    root = Path(output_dir) / f"{safe_prefix}-{stamp}"
    suffix = 1
    while root.exists():
        suffix += 1
        root = Path(output_dir) / f"{safe_prefix}-{stamp}-{suffix}"
    return root


def create_run_dir(explicit: Path | None, output_dir: Path, prefix: str) -> RunDir:
    """Make a new run directory: exactly `explicit`, or a unique `<prefix>-<time>` under `output_dir`.

    An existing directory is never reused, so no earlier run is overwritten.
    """
    root = new_folder(explicit, output_dir, prefix)
    check_writable(root, "--run-dir" if explicit is not None else "output.dir")
    try:
        for folder in (root, root / "checkpoints", root / "reports", root / "predictions"):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HomofitError(f"{'--run-dir' if explicit is not None else 'output.dir'} {root}: cannot create the run "
                           f"directory ({error.strerror or error}); choose a folder you can write.") from None
    return RunDir(root)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file; of a folder (a data split kept as several files), that of its files' names and
    contents in sorted order."""
    digest = hashlib.sha256()
    files = sorted(file for file in path.rglob("*") if file.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the working directory's git checkout, if there is one."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run_candidates(output_dir: Path) -> list[Path]:
    """The folders under output_dir that may be runs (each has checkpoints/)."""
    if not output_dir.is_dir():
        return []
    return sorted(path for path in output_dir.iterdir() if (path / "checkpoints").is_dir())


def run_metadata(overrides: list[str], data_files: dict[str, Path], device: str, seed: int,
                 data_hashes: dict[str, str]) -> dict[str, Any]:
    import torch
    import transformers

    from homofit import __version__
    from homofit.buildinfo import homofit_commit

    return {
        "command": sys.argv,
        "overrides": overrides,
        "versions": {"homofit": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "python": sys.version.split()[0]},
        "homofit_commit": homofit_commit(),  # the source homofit was installed from
        "git_commit": git_commit(),  # the working directory's checkout (the user's project), if any
        "device": device,
        "data": {split: {"path": str(path), "sha256": data_hashes[split]} for split, path in data_files.items()},
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
