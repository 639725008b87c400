"""Task families. Each module here defines one Task and registers it; nothing else names a task.

A Task owns everything that differs between task families: its spec section, its reader, how examples
become model inputs, how model outputs become predictions, and its scorer and report. The training loop
and the CLI only call the methods of `Task`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from homofit.errors import HomofitError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import DataConfig, ModelConfig
    from homofit.outcomes import Outcomes


class Task(Protocol):
    """What the loop, `eval` and `predict` need from a task family.

    Two methods are optional, called only when a task has them: `prepare_tokenizer(tokenizer)`, before
    `build_model`, to add tokens the task needs; `write_report_figures(report, folder, name)`, after
    each report is written, to draw figures beside it.
    """

    name: ClassVar[str]
    config_type: ClassVar[type[BaseModel]]
    headline_metric: ClassVar[str]
    headline_metrics: ClassVar[tuple[str, ...]]  # every top-level score a report may hold; early stopping picks one
    labels: list[str]

    def read(self, path: Path, data: DataConfig) -> list[Any]:
        """Read one split into examples; a malformed record raises HomofitError naming file and line."""

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[Any]:
        """Read what `homofit predict` was given (a file, or raw text)."""

    def set_labels(self, train_examples: list[Any], previous: list[str] | None) -> list[str]:
        """Fix the label set from the training data (keeping `previous` first); returns labels new to it."""

    def build_model(self, model_path: str, model_config: ModelConfig, from_checkpoint: bool) -> PreTrainedModel:
        """The backbone with this task's head."""

    def encode(self, examples: list[Any], tokenizer: PreTrainedTokenizerBase, data: DataConfig) -> list[dict]:
        """Examples to features (one example may become several windows); each carries 'example_index'."""

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
        """Pad features into model inputs (with 'labels' when the features have them)."""

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss summed over its units (tokens, words or examples: each task says which) and the
        number of units, both on the model's device; the loop divides once per accumulation window."""

    def predict_batch(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> list[Any]:
        """Model outputs for each row of the batch, moved to the CPU."""

    def decode(self, examples: list[Any], features: list[dict], outputs: list[Any]) -> list[Any]:
        """Per-feature outputs (aligned with `features`) to one prediction per example."""

    def score(self, examples: list[Any], predictions: list[Any]) -> dict[str, Any]:
        """The report: headline metrics at the top level, details below them."""

    def format_report(self, report: dict[str, Any]) -> str:
        """The report as text for reports/*.txt."""

    def prediction_records(self, examples: list[Any], predictions: list[Any]) -> list[dict[str, Any]]:
        """JSON-able records, one per example, for predictions/*.jsonl and `predict`."""

    def outcomes(self, records: list[dict[str, Any]], fail_below: float = 50.0) -> Outcomes:
        """From scored prediction records: whether each example is right (generation: its sentence-level
        score is at least `fail_below`) and the counts the headline metrics are computed from, on any subset."""

    def input_text(self, example: Any) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""

    def evaluate_batch(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[list[Any], Any]:
        """`predict_batch`'s rows and, when the batch has labels, its (summed loss, units) as `loss` computes
        them, from the same forward pass; None without labels."""

    def state(self) -> dict[str, Any]:
        """What homofit.json keeps so `eval` and `predict` can rebuild the task."""


TaskFactory = Callable[[BaseModel], Task]

_REGISTRY: dict[str, type] = {}


def register(task_class: type) -> type:
    """Class decorator: make a task family available under `task_class.name`."""
    _REGISTRY[task_class.name] = task_class
    return task_class


@functools.cache
def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def task_config_types() -> list[type[BaseModel]]:
    _discover()
    return [task_class.config_type for task_class in _REGISTRY.values()]


def build_task(task_config: BaseModel, state: dict[str, Any] | None = None) -> Task:
    """The Task for a validated `task` section; `state` comes from a checkpoint's homofit.json."""
    _discover()
    task_class = _REGISTRY.get(task_config.type)
    if task_class is None:
        raise HomofitError(f"unknown task type '{task_config.type}'; known: {', '.join(sorted(_REGISTRY))}")
    return task_class(task_config, state or {})


def task_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)
