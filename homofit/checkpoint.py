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
                    write_more: Any = None, state_dict: dict[str, Any] | None = None) -> None:
    """Write a complete checkpoint folder at `path`, atomically replacing any earlier one.

    `extra` goes into homofit.json (e.g. the step); `write_more(folder)` adds files (the trainer state).
    """
    from homofit import __version__

    with atomic_folder(path) as folder:
        write_weights(folder, model, state_dict)
        tokenizer.save_pretrained(folder)
        state = {"homofit_version": __version__, "task": task.name, "task_state": task.state(), "spec": spec,
                 **(extra or {})}
        (folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        if write_more is not None:
            write_more(folder)


def write_weights(folder: Path, model: PreTrainedModel, state_dict: dict[str, Any] | None = None) -> None:
    """The model's weights as safetensors; `state_dict` when given (FSDP's gathered weights) instead of the
    model's own."""
    from homofit.model import unwrap_adapters

    if state_dict is None:
        unwrap_adapters(model).save_pretrained(folder, safe_serialization=True)
    else:
        model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)


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
    if not path.is_dir():
        raise HomofitError(f"--checkpoint {path}: no such folder (a run's checkpoints are RUN/checkpoints/best and "
                           "RUN/checkpoints/last).")
    if not state_file.is_file():
        hint = " (a run's checkpoints are RUN/checkpoints/best and RUN/checkpoints/last)"
        raise HomofitError(f"--checkpoint {path}: no {STATE_FILE} there; not a homofit checkpoint{hint}.")
    check_model_folder(path)
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        return CheckpointState(state["task"], state["task_state"], state["spec"])
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as error:
        raise HomofitError(f"{state_file}: unreadable ({error}); the checkpoint folder is damaged.") from None


# -- is a model folder complete? ---------------------------------------------------------------------------

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")


def check_model_folder(path: Path, gguf_file: str | None = None) -> None:
    """Refuse a model folder (a homofit checkpoint or a pretrained model) that cannot load as it should: a
    missing or unreadable config.json, no weights or damaged ones, no tokenizer, an unreadable homofit.json.
    Each is one line naming the folder, what is wrong and what to do."""
    homofit = (path / STATE_FILE).is_file()
    fix = ("use the run's other checkpoint (checkpoints/best or checkpoints/last) or train again" if homofit
           else "copy or download the model folder again")

    def damaged(what: str) -> HomofitError:
        return HomofitError(f"checkpoint damaged: {path}: {what}; {fix}.")

    _check_config_json(path / "config.json", damaged)
    if gguf_file is None or homofit:
        weights = [name for name in WEIGHT_FILES if (path / name).is_file()]
        if not weights:
            stray = sorted(entry.name for entry in path.iterdir()
                           if ".safetensors" in entry.name or entry.suffix == ".bin")
            left = f" (only {', '.join(stray)}, left by an interrupted save)" if stray else ""
            raise damaged(f"no model weights (model.safetensors){left}")
        for shard in _weight_shards(path, weights[0], damaged):
            if shard.suffix == ".safetensors":
                problem = safetensors_problem(shard)
                if problem:
                    raise damaged(f"{shard.name} {problem}")
            elif shard.stat().st_size == 0:
                raise damaged(f"{shard.name} is empty")
        if homofit and not any((path / name).is_file() for name in TOKENIZER_FILES):  # homofit always saves one
            raise damaged(f"no tokenizer (none of {', '.join(TOKENIZER_FILES[:3])}, ...)")
    if homofit:
        try:
            document = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            spec = document["spec"]
            document["task"], document["task_state"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise damaged(f"{STATE_FILE} is unreadable ({type(error).__name__}: {error})") from None
        from pydantic import ValidationError

        from homofit.config import experiment_config_type

        try:
            experiment_config_type().model_validate(spec)
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("function-", "tagged-")))
            raise damaged(f"the spec in {STATE_FILE} no longer validates ({key}: {first['msg']}); fix that key "
                          "in it") from None


def _check_config_json(config: Path, damaged: Any) -> None:
    if not config.is_file():
        raise damaged("config.json is missing")
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise damaged(f"config.json is not valid JSON ({error})") from None
    if not isinstance(document, dict) or "model_type" not in document:
        raise damaged("config.json has no model_type")


def _weight_shards(path: Path, weights: str, damaged: Any) -> list[Path]:
    if not weights.endswith(".index.json"):
        return [path / weights]
    try:
        names = sorted(set(json.loads((path / weights).read_text(encoding="utf-8"))["weight_map"].values()))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise damaged(f"{weights} is unreadable ({error})") from None
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        raise damaged(f"{weights} names shards that are missing: {', '.join(missing[:3])}")
    return [path / name for name in names]


def safetensors_problem(file: Path) -> str | None:
    """What is wrong with a safetensors file, from its header and size alone; None when it is whole.
    The format: an 8-byte little-endian header length, a JSON header of dtype/shape/data_offsets, the data."""
    size = file.stat().st_size
    if size == 0:
        return "is empty"
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"is cut short ({size} bytes)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"is cut short ({size} bytes, its header alone says {length + 8})"
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "has an unreadable header"
    if not isinstance(header, dict):
        return "has an unreadable header"
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets", [])) == 2]
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        return f"is cut short ({size:,} bytes of {needed:,})"
    return None
