"""`eval` and `predict`: everything they need comes from the checkpoint folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homofit.checkpoint import read_checkpoint_state
from homofit.config import experiment_config_type
from homofit.errors import HomofitError
from homofit.tasks import Task, build_task
from homofit.train import Split, predict_split, write_predictions, write_report_figures


@dataclass
class LoadedCheckpoint:
    config: Any
    task: Task
    model: Any
    tokenizer: Any
    runtime: Any

    @property
    def eval_batch_size(self) -> int:
        return self.config.train.eval_batch_size or self.config.train.batch_size


def load_checkpoint(path: Path, data_overrides: list[str] = ()) -> LoadedCheckpoint:
    """The checkpoint's task, model and tokenizer, and its spec with `data.KEY=VALUE` overrides applied (how a
    file is read: its columns, format, max_length; the task and model are the checkpoint's own)."""
    from homofit.config import load_config
    from homofit.model import load_tokenizer
    from homofit.runtime import build_runtime

    state = read_checkpoint_state(path)
    for override in data_overrides:
        if not override.startswith("data."):
            raise HomofitError(f"{override}: eval takes overrides of the data section only (e.g. "
                               "data.columns.text=sentence); the task and the model are the checkpoint's own.")
    config = load_config(None, list(data_overrides), base=state.spec) if data_overrides else \
        experiment_config_type().model_validate(state.spec)
    task = build_task(config.task, state.task_state)
    runtime = build_runtime(config.train.device, config.train.precision)
    tokenizer = load_tokenizer(str(path))  # saved with the checkpoint: the task's tokens are in it
    model = task.build_model(str(path), config.model, tokenizer, from_checkpoint=True).to(runtime.device)
    return LoadedCheckpoint(config, task, model, tokenizer, runtime)


def eval_checkpoint(checkpoint: Path, data: Path | None, split: str, out: Path | None,
                    data_overrides: list[str] = ()) -> tuple[str, dict[str, Any]]:
    """Score a checkpoint on a split of its spec or on another file; returns (name, report)."""
    name = split if data is None else data.name.split(".")[0]
    taken = [out / f"{name}{suffix}" for suffix in (".json", ".txt", ".predictions.jsonl")] if out is not None else []
    if any(path.exists() for path in taken):
        raise HomofitError(f"--out {out}: already holds {name}.json from an earlier eval; homofit does not overwrite "
                           "it. Choose a new folder.")
    loaded = load_checkpoint(checkpoint, data_overrides)
    if data is None:
        data, examples = spec_split(loaded, split, checkpoint)
    else:
        examples = loaded.task.read(data, loaded.config.data)
    examples, predictions, report = score_examples(loaded, data, split, name, examples)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (out / f"{name}.txt").write_text(loaded.task.format_report(report), encoding="utf-8")
        write_report_figures(loaded.task, report, out, name)
        write_predictions(out / f"{name}.predictions.jsonl", loaded.task, examples, predictions)
    return name, report


def spec_split(loaded: LoadedCheckpoint, split: str, checkpoint: Path) -> tuple[Path, list]:
    """A split of the checkpoint's spec, read exactly as in training (capped, dev carved out of train)."""
    from homofit.train import read_splits

    found = read_splits(loaded.task, loaded.config, (split,)).get(split)
    if found is None:
        raise HomofitError(f"--split {split}: the spec of {checkpoint} has no data.{split}; pass --data FILE.")
    return found


def score_examples(loaded: LoadedCheckpoint, data: Path, split: str, name: str | None = None,
                   examples: list | None = None) -> tuple[list, list, dict]:
    """Predict with the checkpoint on `examples` (default: all of `data`) and score: (examples, predictions,
    report)."""
    examples = loaded.task.read(data, loaded.config.data) if examples is None else examples
    features = loaded.task.encode(examples, loaded.tokenizer, loaded.config.data)
    result = predict_split(loaded.model, loaded.task, loaded.tokenizer, Split(name or split, data, examples, features),
                           loaded.eval_batch_size, loaded.runtime)
    report = loaded.task.score(examples, result.predictions)
    if result.loss is not None:
        report = {"loss": result.loss, **report}
    return examples, result.predictions, report


def predict(checkpoint: Path, source: str, out: Path | None) -> list[dict[str, Any]]:
    """Predictions for raw text or a data file, as JSON records (also written to `out` as JSONL)."""
    loaded = load_checkpoint(checkpoint)
    examples = loaded.task.read_predict_input(source, loaded.config.data)
    if not examples:
        raise HomofitError(f"{source}: nothing to predict (no non-blank lines).")
    features = loaded.task.encode(examples, loaded.tokenizer, loaded.config.data)
    predictions = predict_split(loaded.model, loaded.task, loaded.tokenizer,
                                Split("predict", Path(source), examples, features),
                                loaded.eval_batch_size, loaded.runtime).predictions
    if out is not None:
        write_predictions(out, loaded.task, examples, predictions)
    return loaded.task.prediction_records(examples, predictions)
