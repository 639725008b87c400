"""The training state: everything `fit` changes, in one object that a checkpoint saves and restores whole.

A resumable `checkpoints/last` holds, beside the plain Hugging Face weights:
- trainer_state.json: counters (step, epoch, position in the epoch), early stopping, the log window,
  the spec fingerprint and the python/numpy RNG states; readable by anyone.
- training_state.pt: optimizer, scheduler and grad-scaler state and the torch RNG states, tensors and plain
  containers only, so it loads with `torch.load(weights_only=True)` (no pickled code).
- trainable.safetensors (LoRA only): the adapter and head weights, which the merged weights cannot give back.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homofit.errors import HomofitError

if TYPE_CHECKING:
    import torch

TRAINER_STATE_FILE = "trainer_state.json"
TRAINING_STATE_FILE = "training_state.pt"
TRAINABLE_FILE = "trainable.safetensors"

# Keys that may change when a run is resumed: how long it trains, how often it logs and saves, where output
# goes. Everything else in the spec changes what is computed, so a resume with another value is refused.
RESUMABLE_KEYS = (
    ("train", "epochs"), ("train", "max_steps"), ("train", "save_every"), ("train", "log_every"),
    ("train", "eval_batch_size"), ("train", "early_stopping", "patience"), ("train", "dist_timeout_s"),
    ("data", "cache"), ("train", "compile"), ("output",),
)


@dataclass
class BestTracker:
    """Keeps the best eval score and counts evaluations without improvement, for early stopping.

    A tie keeps the later checkpoint (the same dev score after more training) but is no gain for patience:
    only a strictly better score resets the count of evaluations without improvement.
    """

    metric: str
    mode: str
    patience: int | None
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0

    def update(self, report: dict[str, Any], step: int) -> bool:
        """Record one eval; True when its checkpoint becomes `best` (better than any before, or tied)."""
        score = report[self.metric]
        improved = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
        tied = not improved and score == self.best
        self.bad_evals = 0 if improved else self.bad_evals + 1
        if improved or tied:
            self.best, self.best_step = score, step
        return improved or tied

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_evals >= self.patience


@dataclass
class LogWindow:
    """The training loss since the last log line, kept on the device (read once per log line)."""

    loss: torch.Tensor
    steps: int = 0


@dataclass
class TrainState:
    """What `fit` receives and updates. `batch_in_epoch` counts micro-batches of `epoch` already trained on."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    tracker: BestTracker
    window: LogWindow
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    metrics_offset: int = 0  # bytes of metrics.jsonl written when this state was saved
    finished: bool = False
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def counters(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "finished": self.finished, "metrics_offset": self.metrics_offset,
                "tracker": asdict(self.tracker), "log_window_steps": self.window.steps}


# -- saving and restoring ---------------------------------------------------------------------------------


def write_trainer_state(folder: Path, state: TrainState, lora: bool) -> None:
    """Add the trainer state to a checkpoint folder that already holds the weights."""
    import numpy
    import torch

    python_rng = random.getstate()
    numpy_rng = numpy.random.get_state()
    document = {
        **state.counters(),
        "fingerprint": state.fingerprint,
        "rng": {"python": [python_rng[0], list(python_rng[1]), python_rng[2]],
                "numpy": [numpy_rng[0], numpy_rng[1].tolist(), *numpy_rng[2:]]},
    }
    (folder / TRAINER_STATE_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    tensors = {
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "log_window_loss": state.window.loss.detach().cpu(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(tensors, folder / TRAINING_STATE_FILE)
    if lora:
        from safetensors.torch import save_file

        trainable = {name: parameter.detach().contiguous().cpu()
                     for name, parameter in state.model.named_parameters() if parameter.requires_grad}
        save_file(trainable, str(folder / TRAINABLE_FILE))


def read_trainer_state(folder: Path) -> dict[str, Any]:
    """trainer_state.json of a resumable checkpoint, or a clear error naming what is missing."""
    path = folder / TRAINER_STATE_FILE
    if not path.is_file() or not (folder / TRAINING_STATE_FILE).is_file():
        raise HomofitError(f"--resume: {folder} holds no resumable trainer state ({TRAINER_STATE_FILE}, "
                           f"{TRAINING_STATE_FILE}); only runs saved by this version of homofit can be resumed.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HomofitError(f"{path}: unreadable ({error}); the checkpoint is damaged.") from None


def restore_trainer_state(folder: Path, state: TrainState, document: dict[str, Any], lora: bool) -> None:
    """Put a saved state back into `state` (built as for a new run), RNGs included."""
    import numpy
    import torch

    try:
        tensors = torch.load(folder / TRAINING_STATE_FILE, weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch raises several types for a truncated or foreign file
        raise HomofitError(f"{folder / TRAINING_STATE_FILE}: unreadable ({error}); the checkpoint is "
                           "damaged.") from None
    if lora:
        from safetensors.torch import load_file

        trainable = load_file(str(folder / TRAINABLE_FILE))
        parameters = dict(state.model.named_parameters())
        with torch.no_grad():
            for name, tensor in trainable.items():
                parameters[name].copy_(tensor)
    state.optimizer.load_state_dict(tensors["optimizer"])
    state.scheduler.load_state_dict(tensors["scheduler"])
    state.scaler.load_state_dict(tensors["scaler"])
    state.window.loss.copy_(tensors["log_window_loss"])
    state.window.steps = document["log_window_steps"]
    state.step, state.epoch = document["step"], document["epoch"]
    state.batch_in_epoch, state.metrics_offset = document["batch_in_epoch"], document["metrics_offset"]
    for key, value in document["tracker"].items():
        if key != "patience":  # patience may be changed on resume
            setattr(state.tracker, key, value)
    python_rng = document["rng"]["python"]
    random.setstate((python_rng[0], tuple(python_rng[1]), python_rng[2]))
    numpy_rng = document["rng"]["numpy"]
    numpy.random.set_state((numpy_rng[0], numpy.array(numpy_rng[1], dtype=numpy.uint32), *numpy_rng[2:]))
    torch.set_rng_state(tensors["torch_rng"])
    if tensors["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda_rng"])


# -- what a resume must not change ------------------------------------------------------------------------


def fingerprint(spec: dict[str, Any], data_hashes: dict[str, str], labels: list[str]) -> dict[str, Any]:
    """The spec (less RESUMABLE_KEYS), the data files' hashes and the label set, as a run's identity."""
    fixed = _without_resumable_keys(spec)
    digest = hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()
    return {"spec_sha256": digest, "spec": fixed, "data": data_hashes, "labels": labels}


def fingerprint_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a saved run's fingerprint and the current one, one phrase each."""
    changes = [f"{key}: {before!r} -> {after!r}" for key, before, after in _diff(saved["spec"], current["spec"])]
    for split in sorted(set(saved["data"]) | set(current["data"])):
        before, after = saved["data"].get(split), current["data"].get(split)
        if before != after:
            changes.append(f"data.{split}: " + ("the file's content changed" if before and after
                                                else "added" if after else "removed"))
    if saved["labels"] != current["labels"]:
        added = [label for label in current["labels"] if label not in saved["labels"]]
        removed = [label for label in saved["labels"] if label not in current["labels"]]
        changes.append(f"labels: added {added or 'none'}, removed {removed or 'none'}")
    return changes


def _without_resumable_keys(spec: dict[str, Any]) -> dict[str, Any]:
    fixed = json.loads(json.dumps(spec))
    for keys in RESUMABLE_KEYS:
        node = fixed
        for key in keys[:-1]:
            node = node.get(key, {})
        node.pop(keys[-1], None)
    return fixed


def _diff(before: Any, after: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            found += _diff(before.get(key), after.get(key), f"{prefix}{key}.")
        return found
    return [] if before == after else [(prefix.rstrip("."), before, after)]
