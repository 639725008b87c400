"""Task families. Each module here defines one Task and registers it; nothing else names a task.

A Task owns everything that differs between task families: its spec section, its reader, how examples
become model inputs, how model outputs become predictions, and its scorer and report. The training loop
and the CLI only call the methods of `Task`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from homofit.errors import HomofitError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import DataConfig, ModelConfig
    from homofit.heads import Head
    from homofit.outcomes import Outcomes


class Task:
    """What the loop, `eval` and `predict` need from a task family; every task family subclasses it.

    The order of the calls, in training: `read` each split, `initialize` (labels, tokens, anything settled
    by the training data), `build_model`, `encode`, then `collate` / `loss` per step and `evaluate_batch` /
    `decode` / `score` per evaluation. `eval` and `predict` rebuild the task from its checkpoint's `state()`
    and skip `initialize`. The model side is a head adapter (homofit.heads) held in `self.head`, so
    `build_model`, `collate`, `loss` and `evaluate_batch` are the adapter's unless a task says otherwise.
    """

    name: ClassVar[str]
    config_type: ClassVar[type[BaseModel]]
    headline_metric: ClassVar[str]  # the default of train.early_stopping.metric
    headline_metrics: ClassVar[tuple[str, ...]]  # the report's top-level scores, in the order they are shown
    lower_is_better: ClassVar[frozenset[str]] = frozenset()  # headline metrics where less wins (loss always does)
    # The starter spec's values beside the schema's defaults (`homofit init`): data paths, a model, train keys.
    starter: ClassVar[dict[str, Any]] = {"data": {"train": "data/train.jsonl", "dev": "data/dev.jsonl",
                                                  "test": "data/test.jsonl"}}

    head: Head

    def __init__(self, config: BaseModel, state: dict[str, Any]) -> None:
        """`state` is a checkpoint's `state()` ({} for a new task)."""
        self.config = config
        self.labels: list[str] = list(state.get("labels", []))

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig) -> list[Any]:
        """Read one split into examples; a malformed record raises HomofitError naming file and line."""
        raise NotImplementedError

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[Any]:
        """Read what `homofit predict` was given (a file, or raw text)."""
        raise NotImplementedError

    def initialize(self, train_examples: list[Any], tokenizer: PreTrainedTokenizerBase,
                   previous_state: dict[str, Any] | None) -> list[str]:
        """Settle what the training data decides before the model is built: the label set (a checkpoint's
        labels in `previous_state` first, new ones after), tokens to add to the tokenizer, and the like.
        Returns the labels new to the checkpoint. No labels, no tokens: nothing to do."""
        return []

    def input_text(self, example: Any) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        raise NotImplementedError

    # -- model ------------------------------------------------------------------------------------------

    def build_model(self, model_path: str, model_config: ModelConfig, tokenizer: PreTrainedTokenizerBase,
                    from_checkpoint: bool) -> PreTrainedModel:
        """The backbone with this task's head (a checkpoint's head grows for labels new to it)."""
        return self.head.build(model_path, model_config, self.labels, from_checkpoint)

    def encode(self, examples: list[Any], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        """Examples to features (one example may become several windows); each carries 'example_index'."""
        raise NotImplementedError

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
        """Pad features into model inputs (with the labels when the features have them)."""
        return self.head.collate(features, tokenizer)

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss summed over its units (tokens, words or examples: each task says which) and the
        number of units, both on the model's device; the loop divides once per accumulation window."""
        return self.head.loss(model, batch)

    def evaluate_batch(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[list[Any], Any]:
        """Model outputs for each row of the batch, on the CPU, and, when the batch has labels, its (summed
        loss, units) as `loss` computes them, from the same forward pass; None without labels."""
        return self.head.evaluate(model, batch)

    def trainable_modules(self, model: PreTrainedModel) -> list[str]:
        """The head modules that train in full under LoRA (peft's modules_to_save)."""
        return self.head.trainable_modules(model)

    def decode(self, examples: list[Any], features: list[dict], outputs: list[Any]) -> list[Any]:
        """Per-feature outputs (aligned with `features`) to one prediction per example."""
        raise NotImplementedError

    # -- scores and reports -----------------------------------------------------------------------------

    def score(self, examples: list[Any], predictions: list[Any]) -> dict[str, Any]:
        """The report: the headline metrics at the top level, details below them."""
        raise NotImplementedError

    @classmethod
    def headline(cls, report: dict[str, Any]) -> dict[str, float]:
        """The report's headline metrics and, when the split was scored with labels, its loss (the training
        loss on that split): what the console, metrics.jsonl, trackers, seeds and sweeps show."""
        return {key: float(report[key]) for key in (*cls.headline_metrics, "loss") if key in report}

    def format_report(self, report: dict[str, Any]) -> str:
        """The report as text for reports/*.txt."""
        raise NotImplementedError

    def write_report_figures(self, report: dict[str, Any], folder: Path, name: str) -> None:
        """Figures beside reports/<name>.json (e.g. a confusion matrix); none by default."""

    def prediction_records(self, examples: list[Any], predictions: list[Any]) -> list[dict[str, Any]]:
        """JSON-able records, one per example, for predictions/*.jsonl and `predict`."""
        raise NotImplementedError

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """From scored prediction records: whether each example is right (generation: its sentence-level
        score is at least `fail_below`) and the counts the headline metrics are computed from, on any subset."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What homofit.json keeps so `eval` and `predict` can rebuild the task."""
        return {"labels": self.labels}


_REGISTRY: dict[str, type] = {}


def register(task_class: type[Task]) -> type[Task]:
    """Class decorator: make a task family available under `task_class.name` (to specs, `init` and the CLI)."""
    if not issubclass(task_class, Task):
        raise TypeError(f"{task_class.__name__}: a task family subclasses homofit.tasks.Task")
    missing = [name for name in ("name", "config_type", "headline_metric", "headline_metrics")
               if not hasattr(task_class, name)]
    if missing:
        raise TypeError(f"{task_class.__name__}: set {', '.join(missing)}")
    _REGISTRY[task_class.name] = task_class
    from homofit.config import experiment_config_type

    experiment_config_type.cache_clear()  # the spec's task union now includes this family
    return task_class


def task_class(name: str) -> type[Task]:
    """The registered task family called `name`."""
    _discover()
    found = _REGISTRY.get(name)
    if found is None:
        raise HomofitError(f"unknown task type '{name}'; known: {', '.join(sorted(_REGISTRY))}")
    return found


@functools.cache
def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def task_config_types() -> list[type[BaseModel]]:
    _discover()
    return [task_class.config_type for task_class in _REGISTRY.values()]


def build_task(task_config: BaseModel, state: dict[str, Any] | None = None) -> Task:
    """The Task for a validated `task` section; `state` comes from a checkpoint's homofit.json."""
    return task_class(task_config.type)(task_config, state or {})


def task_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)
