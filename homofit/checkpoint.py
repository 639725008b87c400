"""Checkpoints are plain Hugging Face folders plus homofit.json (task, labels, spec)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homofit.errors import HomofitError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.tasks import Task

STATE_FILE = "homofit.json"


@dataclass
class CheckpointState:
    task_type: str
    task_state: dict[str, Any]
    spec: dict[str, Any]


def save_checkpoint(path: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: Task,
                    spec: dict[str, Any]) -> None:
    from homofit import __version__
    from homofit.model import unwrap_adapters

    path.mkdir(parents=True, exist_ok=True)
    unwrap_adapters(model).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    state = {"homofit_version": __version__, "task": task.name, "task_state": task.state(), "spec": spec}
    (path / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def is_homofit_checkpoint(path: str | Path) -> bool:
    return (Path(path) / STATE_FILE).is_file()


def read_checkpoint_state(path: Path) -> CheckpointState:
    state_file = path / STATE_FILE
    if not state_file.is_file():
        hint = " (a run's checkpoints are RUN/checkpoints/best and RUN/checkpoints/last)" if path.is_dir() else ""
        raise HomofitError(f"--checkpoint {path}: no {STATE_FILE} there; not a homofit checkpoint{hint}.")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        return CheckpointState(state["task"], state["task_state"], state["spec"])
    except (json.JSONDecodeError, KeyError) as error:
        raise HomofitError(f"{state_file}: unreadable ({error}); the checkpoint folder is damaged.") from None
