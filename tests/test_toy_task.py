"""A task family is one file: this one (sequence regression, a number per text) subclasses Task, picks a head
adapter, registers itself, and then `init`, `validate`, `train`, `eval` and `predict` work for it unchanged."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import yaml
from pydantic import Field
from test_cli import invoke as cli
from test_cli import ok
from typer.testing import Result

from homofit.config import DataConfig, StrictModel
from homofit.data.readers import read_jsonl
from homofit.errors import HomofitError
from homofit.heads import Head, pad_inputs
from homofit.tasks import _REGISTRY, Task, register
from homofit.textfiles import input_path

# -- the task family --------------------------------------------------------------------------------------


class RegressionConfig(StrictModel):
    type: Literal["toy_regression"] = "toy_regression"
    scale: float = Field(1.0, gt=0.0, description="Targets are divided by this for training and multiplied back.")


@dataclass
class ScoredText:
    text: str
    target: float | None
    source: str


class RegressionHead(Head):
    """One output per text and the squared error summed over the texts (the unit is a text)."""

    auto_class = "AutoModelForSequenceClassification"

    def build(self, model_path: str, model_config: Any, labels: list[str], from_checkpoint: bool,
              **config_overrides: Any) -> Any:
        overrides = {} if from_checkpoint else {"num_labels": 1, "problem_type": "regression"}
        return super().build(model_path, model_config, [], from_checkpoint, **overrides)

    def collate(self, features: list[dict], tokenizer: Any) -> dict[str, Any]:
        import torch

        batch = pad_inputs(features, tokenizer)
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([feature["labels"] for feature in features], dtype=torch.float)
        return batch

    def loss_of(self, outputs: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
        import torch

        errors = outputs.logits.float().squeeze(-1) - batch["labels"]
        return (errors**2).sum(), torch.tensor(errors.numel(), device=errors.device)

    def rows_of(self, outputs: Any, batch: dict[str, Any]) -> list[Any]:
        return outputs.logits.float().squeeze(-1).cpu().tolist()


class RegressionTask(Task):
    """Sequence regression: a number per text, scored by mean squared error and Pearson's r."""

    name: ClassVar[str] = "toy_regression"
    config_type: ClassVar[type] = RegressionConfig
    headline_metric: ClassVar[str] = "pearson"
    headline_metrics: ClassVar[tuple[str, ...]] = ("pearson", "mse")
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"mse"})
    head = RegressionHead()

    def read(self, path: Path, data: DataConfig, labeled: bool = True) -> list[ScoredText]:
        examples = []
        for line, record in read_jsonl(path):
            if not isinstance(record.get("text"), str) or (labeled and not isinstance(record.get("target"), float)):
                raise HomofitError(f"{path}:{line}: needs a 'text' string and a 'target' number.")
            examples.append(ScoredText(record["text"], record.get("target"), f"{path}:{line}"))
        return examples

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[ScoredText]:
        path = input_path(path_or_text)
        if path is not None:
            return self.read(path, data, labeled=False)
        return [ScoredText(line, None, f"line {number}") for number, line in enumerate(path_or_text.splitlines(), 1)]

    def input_text(self, example: ScoredText) -> str:
        return example.text

    def encode(self, examples: list[ScoredText], tokenizer: Any, data: DataConfig) -> list[dict]:
        encoded = tokenizer([example.text for example in examples], truncation=True, max_length=data.max_length)
        features = []
        for index, example in enumerate(examples):
            feature: dict[str, Any] = {"example_index": index, "input_ids": encoded["input_ids"][index]}
            if example.target is not None:
                feature["labels"] = example.target / self.config.scale
            features.append(feature)
        return features

    def decode(self, examples: list[ScoredText], features: list[dict], outputs: list[Any]) -> list[float]:
        return [output * self.config.scale for output in outputs]

    def score(self, examples: list[ScoredText], predictions: list[float]) -> dict[str, Any]:
        from scipy.stats import pearsonr

        gold = [example.target for example in examples]
        mse = sum((value - target) ** 2 for value, target in zip(predictions, gold)) / len(gold)
        pearson = float(pearsonr(predictions, gold)[0]) if len(set(predictions)) > 1 else 0.0
        return {"pearson": pearson, "mse": mse, "examples": len(gold)}

    def format_report(self, report: dict[str, Any]) -> str:
        return f"pearson {report['pearson']:.4f}  mse {report['mse']:.4f} over {report['examples']} texts\n"

    def prediction_records(self, examples: list[ScoredText], predictions: list[float]) -> list[dict[str, Any]]:
        return [{"source": example.source, "text": example.text, "value": value,
                 **({"target": example.target} if example.target is not None else {})}
                for example, value in zip(examples, predictions)]


# -- the test ---------------------------------------------------------------------------------------------


@pytest.fixture
def registered() -> Iterator[None]:
    from homofit.config import experiment_config_type

    register(RegressionTask)
    yield
    _REGISTRY.pop(RegressionTask.name)
    experiment_config_type.cache_clear()


def invoke(*args: Any) -> Result:
    return ok(cli(*args))


def write_split(path: Path, count: int, offset: int) -> Path:
    """Texts of 1 to 6 words; the target is the number of words 'good' among them."""
    lines = []
    for index in range(offset, offset + count):
        words = ["good" if (index * 7 + position) % 3 == 0 else "bad" for position in range(1 + index % 6)]
        lines.append(json.dumps({"text": " ".join(words), "target": float(words.count("good"))}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_task_family_in_one_file_inits_validates_trains_evaluates_and_predicts(
        registered: None, tiny_bert: Path, tmp_path: Path) -> None:
    starter = invoke("init", "toy_regression").stdout
    assert "type: toy_regression" in starter and "Targets are divided by this" in starter
    spec = yaml.safe_load(starter)
    spec["task"]["scale"] = 2.0
    spec["data"] = {"train": str(write_split(tmp_path / "train.jsonl", 48, 0)),
                    "dev": str(write_split(tmp_path / "dev.jsonl", 12, 100)),
                    "test": str(write_split(tmp_path / "test.jsonl", 12, 200)), "max_length": 16}
    spec["model"] = {"name_or_path": str(tiny_bert)}
    spec["optim"]["lr"] = 1e-3
    spec["train"] = {**spec["train"], "epochs": 2, "batch_size": 8, "device": "cpu", "precision": "fp32",
                     "early_stopping": {"metric": "mse", "patience": 2}}
    spec["output"] = {"dir": str(tmp_path / "runs")}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")

    assert "train: " in invoke("validate", path).stdout

    run = tmp_path / "run"
    invoke("train", path, "--run-dir", run)
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    dev_events = [event for event in events if event.get("event") == "eval" and event.get("split") == "dev"]
    assert dev_events and all(set(event) == {"event", "split", "step", "time", "pearson", "mse", "loss"}
                              or set(event) == {"event", "split", "step", "pearson", "mse", "loss"}
                              for event in dev_events)
    test_report = json.loads((run / "reports" / "test.json").read_text())
    assert test_report["examples"] == 12 and math.isfinite(test_report["mse"])

    out = tmp_path / "eval"
    invoke("eval", "--checkpoint", run / "checkpoints" / "best", "--out", out)
    assert json.loads((out / "test.json").read_text()) == test_report  # the reloaded checkpoint scores the same

    predicted = invoke("predict", "--checkpoint", run / "checkpoints" / "best", "good good bad\nbad")
    records = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [record["text"] for record in records] == ["good good bad", "bad"]
    assert all(isinstance(record["value"], float) for record in records)
