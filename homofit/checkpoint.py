"""Checkpoints are plain Hugging Face folders plus homofit.json (task, labels, spec).

A checkpoint is written into a hidden sibling folder, synced to disk and only then renamed into place, so
`best` and `last` are always complete: a save killed half-way leaves the previous folder as it was. A
resumable `last` also holds the trainer state (trainer_state.json, training_state.pt); see homofit.state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homofit.errors import HomofitError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.tasks import Task

STATE_FILE = "homofit.json"
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"


@dataclass
class CheckpointState:
    task_type: str
    task_state: dict[str, Any]
    spec: dict[str, Any]


def save_checkpoint(path: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: Task,
                    spec: dict[str, Any], extra: dict[str, Any] | None = None,
                    write_more: Any = None) -> None:
    """Write a complete checkpoint folder at `path`, atomically replacing any earlier one.

    `extra` goes into homofit.json (e.g. the step); `write_more(folder)` adds files (the trainer state).
    """
    from homofit import __version__

    with atomic_folder(path) as folder:
        write_weights(folder, model)
        tokenizer.save_pretrained(folder)
        state = {"homofit_version": __version__, "task": task.name, "task_state": task.state(), "spec": spec,
                 **(extra or {})}
        (folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        if write_more is not None:
            write_more(folder)


def write_weights(folder: Path, model: PreTrainedModel) -> None:
    from homofit.model import unwrap_adapters

    unwrap_adapters(model).save_pretrained(folder, safe_serialization=True)


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a fresh hidden folder beside `target`; on success sync it and swap it in as `target`.

    On any failure (a full disk, a permission, an exception) the partial folder is removed and `target`
    stays as it was. A process killed meanwhile leaves only `.<name>.partial`, which no reader takes for a
    checkpoint and the next save removes.
    """
    recover_checkpoint(target)
    partial = target.with_name(f".{target.name}{PARTIAL_SUFFIX}")
    try:
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        yield partial
        _fsync_tree(partial)
        _swap_in(partial, target)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        reason = error.strerror or str(error)
        raise HomofitError(f"could not save the checkpoint {target}: {reason}; the previous checkpoint there is "
                           "intact. Free disk space or fix the folder's permissions, then resume the run.") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def recover_checkpoint(target: Path) -> None:
    """Finish a swap that was cut between its two renames: the complete previous folder comes back."""
    old = target.with_name(f".{target.name}{OLD_SUFFIX}")
    if old.is_dir() and not target.exists():
        os.rename(old, target)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _swap_in(partial: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}{OLD_SUFFIX}")
    if target.exists():
        os.rename(target, old)
    os.rename(partial, target)
    _fsync_directory(target.parent)
    if old.exists():
        shutil.rmtree(old)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_directory(folder)


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_homofit_checkpoint(path: str | Path) -> bool:
    return (Path(path) / STATE_FILE).is_file()


def read_checkpoint_state(path: Path) -> CheckpointState:
    recover_checkpoint(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        hint = " (a run's checkpoints are RUN/checkpoints/best and RUN/checkpoints/last)" if path.is_dir() else ""
        raise HomofitError(f"--checkpoint {path}: no {STATE_FILE} there; not a homofit checkpoint{hint}.")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        return CheckpointState(state["task"], state["task_state"], state["spec"])
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as error:
        raise HomofitError(f"{state_file}: unreadable ({error}); the checkpoint folder is damaged.") from None
