"""Every YAML spec homofit ships is valid: the example configs (with their data, where present) and the
starter spec `homofit init` renders for every registered task family and way of fine-tuning."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import yaml
from pydantic import Field
from typer.testing import CliRunner

from homofit import tasks
from homofit.cli import app
from homofit.config import METHOD_LEARNING_RATES, StrictModel, experiment_config_type, fine_tuning_method, load_config
from homofit.starter import METHODS, starter_spec
from homofit.tasks import Task, register, task_names

REPO = Path(__file__).parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# Configs whose splits a script in scripts/ cuts from ../shared/data (written under runs/, outside git).
PREPARED_BY = {"semeval2010_task8.yaml": "scripts/split_semeval2010_task8.py",
               "squad_v1.1.yaml": "scripts/split_squad.py"}
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
# Generation families: the output layer is the decoder, tied to the embeddings, so head_only is refused.
DECODER_OUTPUT = [task for task in task_names() if "backbone" in tasks._REGISTRY[task].config_type.model_fields]
STARTERS = [(task, method) for task in task_names() for method in METHODS
            if not (method == "head_only" and task in DECODER_OUTPUT)]


def test_there_are_specs_to_check() -> None:
    assert "quickstart.yaml" in [path.name for path in CONFIGS]
    assert {"ner", "translation"} <= set(task_names())
    assert "translation" in DECODER_OUTPUT and "ner" not in DECODER_OUTPUT


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_config_loads(config: Path) -> None:
    spec = load_config(config)
    assert spec.data.train is not None
    assert spec.task.type in task_names()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_config_validates_with_its_data(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # data paths in configs/ are relative to the repository root
    spec = load_config(config)
    splits = [path for path in (spec.data.train, spec.data.dev, spec.data.test) if path]
    if not SHARED_DATA.is_dir() and any("shared" in path.parts for path in splits):
        pytest.skip("../shared/data is not beside this checkout")
    if config.name in PREPARED_BY and not all(path.exists() for path in splits):
        subprocess.run([sys.executable, PREPARED_BY[config.name]], cwd=REPO, check=True, capture_output=True)
    missing = [str(path) for path in splits if not path.exists()]
    assert not missing, f"data named by configs/{config.name} is missing: {', '.join(missing)}"
    result = CliRunner().invoke(app, ["validate", str(config.relative_to(REPO))])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"ok: configs/{config.name} is valid")
    assert f"train: {spec.data.train} (" in " ".join(result.output.split())


def comment_text(spec: str) -> str:
    """Every comment of a rendered spec, joined into one line: descriptions wrapped over lines read whole."""
    return " ".join(" ".join(re.findall(r"(?:^|\s)# ?(.*)$", spec, flags=re.MULTILINE)).split())


def assert_valid_starter(spec: str, task: str, method: str, folder: Path) -> Any:
    """The spec parses as YAML, validates, shows every field of the task section with its description as a
    comment, and keeps within 120 characters a line; returns the validated spec."""
    assert [line for line in spec.splitlines() if len(line) > 120] == []
    raw = yaml.safe_load(spec)
    assert list(raw) == ["task", "data", "model", "optim", "train", "output"]
    written = folder / f"{task}-{method}.yaml"
    written.write_text(spec, encoding="utf-8")
    validated = load_config(written)
    assert validated.task.type == raw["task"]["type"] == task
    config_type = tasks._REGISTRY[task].config_type
    assert set(raw["task"]) == set(config_type.model_fields)
    comments = comment_text(spec)
    described = [field.description for field in config_type.model_fields.values() if field.description]
    assert described, f"{task}'s config describes none of its fields"
    for description in described:
        assert " ".join(description.split()) in comments
    return validated


def assert_has_starter_values(raw: dict[str, Any], starter: dict[str, Any], where: str = "") -> None:
    for key, value in starter.items():
        assert key in raw, f"{where}{key} is missing"
        if isinstance(value, dict) and value and isinstance(raw[key], dict):
            assert_has_starter_values(raw[key], value, f"{where}{key}.")
        else:
            assert raw[key] == value, f"{where}{key}"


@pytest.mark.parametrize(("task", "method"), STARTERS)
def test_init_prints_a_valid_spec(task: str, method: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["init", task, "--method", method])
    assert result.exit_code == 0, result.output
    spec = assert_valid_starter(result.stdout, task, method, tmp_path)
    assert fine_tuning_method(spec.model) == method
    assert spec.optim.lr == METHOD_LEARNING_RATES[method]
    assert f"  lr: {METHOD_LEARNING_RATES[method]:.1e}".replace("e-0", "e-") in result.stdout  # written, not implied
    raw = yaml.safe_load(result.stdout)
    if method == "full":
        assert_has_starter_values(raw, tasks._REGISTRY[task].starter)
    if method == "lora":
        assert "freeze" not in raw["model"]
        assert "  lora: {r: 8, alpha: 16, dropout: 0.05}  # adapters on peft's default modules; the head trains " \
               "whole" in result.stdout.splitlines()


def test_init_header_and_nested_settings() -> None:
    spec = starter_spec("translation", "lora")
    assert spec.splitlines()[0] == "# homofit starter spec for task type translation (homofit init translation " \
                                   "--method lora)."
    generation = yaml.safe_load(spec)["task"]["generation"]
    assert generation == tasks._REGISTRY["translation"].config_type().generation.model_dump()
    assert "    num_beams: 1" in [line.split("#")[0].rstrip() for line in spec.splitlines()]


@pytest.mark.parametrize("task", DECODER_OUTPUT)
def test_init_head_only_is_refused_where_the_decoder_is_the_output_layer(task: str) -> None:
    result = CliRunner().invoke(app, ["init", task, "--method", "head_only"])
    assert result.exit_code == 2
    assert "nothing would train; use full or lora." in result.output


class ToyConfig(StrictModel):
    type: Literal["toy"] = "toy"
    window: int = Field(3, ge=1, description="Words read on each side of the target word.")


class ToyTask(Task):
    """Toy word tagging: a task family registered by a test, in one file."""

    name: ClassVar[str] = "toy"
    config_type: ClassVar[type] = ToyConfig
    headline_metric: ClassVar[str] = "accuracy"
    headline_metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    starter: ClassVar[dict[str, Any]] = {"data": {"train": "toy/train.jsonl"}, "train": {"epochs": 1}}


@pytest.fixture
def toy_task() -> Iterator[str]:
    register(ToyTask)
    experiment_config_type.cache_clear()  # the spec's task union now has the toy family
    yield ToyTask.name
    tasks._REGISTRY.pop(ToyTask.name)
    experiment_config_type.cache_clear()


def test_a_task_registered_at_runtime_gets_a_starter_spec(toy_task: str, tmp_path: Path) -> None:
    spec = starter_spec(toy_task)
    validated = assert_valid_starter(spec, toy_task, "full", tmp_path)
    assert (validated.task.window, str(validated.data.train), validated.train.epochs) == (3, "toy/train.jsonl", 1)
    assert spec.splitlines()[1] == "# Toy word tagging: a task family registered by a test, in one file."
    assert "  window: 3                 # Words read on each side of the target word." in spec.splitlines()
    assert f"  type: toy                 # {' | '.join(task_names())}" in spec.splitlines()
    assert "toy" in task_names()
