"""`homofit sweep` on Optuna with the tiny model: a sweep completes and its best spec reproduces the best trial,
two workers share one study, a pruner stops a clearly worse trial, a killed sweep resumes to the requested
number of trials, and a bad sweep section is a clear error."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from homofit.cli import app
from homofit.config import load_config

optuna = pytest.importorskip("optuna")  # installed by the README's set-up (the test extra)

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def ok(result: Any) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def ner_sweep_spec(folder: Path, model: Path, **sweep: Any) -> Path:
    spec = {
        "task": {"type": "ner"},
        "data": {"train": str(DATA / "ner" / "train.conll"), "dev": str(DATA / "ner" / "dev.conll"),
                 "test": str(DATA / "ner" / "test.conll"), "max_length": 64},
        "model": {"name_or_path": str(model)},
        "optim": {"lr": 1.0e-3},
        "train": {"max_steps": 4, "eval_every": 2, "batch_size": 16, "device": "cpu", "precision": "fp32", "seed": 5},
        "output": {"dir": str(folder / "runs")},
        "sweep": {"trials": 4, "startup_trials": 1, "heartbeat_seconds": 1,
                  "space": {"optim.lr": {"log_uniform": [1.0e-4, 1.0e-2]}, "train.batch_size": {"choices": [8, 16]}},
                  **sweep},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def trial_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "trials.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_sweep_completes_and_best_yaml_reproduces_the_best_trial(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_sweep_spec(tmp_path, tiny_bert, pruner="none")
    ok(invoke("sweep", spec, "--sweep-dir", tmp_path / "sweep"))
    folder = tmp_path / "sweep"
    rows = trial_rows(folder)
    assert [row["state"] for row in rows] == ["COMPLETE"] * 4
    assert {f"trial-{number:03d}" for number in range(4)} <= {path.name for path in folder.iterdir()}
    for number in range(4):  # ordinary run directories; test is never read by a trial
        run = folder / f"trial-{number:03d}"
        assert json.loads((run / "trial.json").read_text())["state"] == "COMPLETE"
        assert (run / "checkpoints" / "best" / "model.safetensors").is_file()
        assert not (run / "reports" / "test.json").exists()
    best = json.loads((folder / "best.json").read_text())
    assert "f1" in best["test"] and (folder / "best-test" / "test.json").is_file()  # test scored once, at the end
    best_spec = load_config(folder / "best.yaml")  # a plain, valid spec
    assert best_spec.sweep is None
    assert best_spec.optim.lr == pytest.approx(float(rows[best["best_trial"]]["optim.lr"]))
    ok(invoke("train", folder / "best.yaml", "--run-dir", tmp_path / "again"))
    again = json.loads((tmp_path / "again" / "reports" / "dev.json").read_text())
    assert again["f1"] == pytest.approx(best["dev"]["f1"], abs=1e-12)
    assert (folder / "sweep.history.png").is_file()


def test_two_workers_share_one_study(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_sweep_spec(tmp_path, tiny_bert, sampler="random", pruner="none")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    workers = [subprocess.Popen([sys.executable, "-m", "homofit.cli", "sweep", str(spec), "--storage", storage,
                                 "--study", "shared", "--sweep-dir", str(tmp_path / name)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name in ("a", "b")]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    mine = {name: {int(path.name.split("-")[1]) for path in (tmp_path / name).glob("trial-*")} for name in ("a", "b")}
    assert mine["a"] and mine["b"] and not mine["a"] & mine["b"]  # disjoint trials of one study
    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [trial.number for trial in study.trials if trial.state.is_finished()]
    assert len(finished) >= 4 and set(finished) == mine["a"] | mine["b"]


def test_median_pruner_stops_a_clearly_worse_trial(tmp_path: Path, tiny_bert: Path) -> None:
    """Dialogue perplexity falls fast at lr 3e-3 and not at all at 1e-9: the second trial is pruned at its
    first dev evaluation, and its run directory says so."""
    spec = {
        "task": {"type": "dialogue", "generation": {"max_new_tokens": 2}},
        "data": {"train": str(DATA / "generation" / "sgd" / "train"),
                 "dev": str(DATA / "generation" / "sgd" / "dev" / "dialogues_001.json"), "max_length": 48,
                 "max_eval_samples": 8, "max_train_samples": 64},
        "model": {"name_or_path": str(tiny_bert)},
        "train": {"max_steps": 6, "eval_every": 2, "batch_size": 8, "device": "cpu", "precision": "fp32"},
        "output": {"dir": str(tmp_path / "runs")},
        "sweep": {"trials": 2, "metric": "perplexity", "startup_trials": 1, "sampler": "random",
                  "space": {"optim.lr": {"choices": [3.0e-3, 1.0e-9]}},
                  "enqueue": [{"optim.lr": 3.0e-3}, {"optim.lr": 1.0e-9}]},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    ok(invoke("sweep", path, "--sweep-dir", tmp_path / "sweep"))
    assert [row["state"] for row in trial_rows(tmp_path / "sweep")] == ["COMPLETE", "PRUNED"]
    pruned = json.loads((tmp_path / "sweep" / "trial-001" / "trial.json").read_text())
    assert pruned["state"] == "PRUNED" and pruned["note"].startswith("pruned at step 2")
    assert json.loads((tmp_path / "sweep" / "best.json").read_text())["best_trial"] == 0


def test_a_killed_sweep_resumes_to_the_requested_trials(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_sweep_spec(tmp_path, tiny_bert, trials=3, sampler="random", pruner="none")
    folder = tmp_path / "sweep"
    # 48 sentences in batches of 8 or 16, 4 steps a trial: the 7th micro-batch is inside the second trial
    killed = subprocess.run([sys.executable, str(REPO / "tests" / "train_driver.py"), "sweep", str(spec),
                             "--sweep-dir", str(folder)], capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, "HOMOFIT_TEST_KILL_AFTER_BATCHES": "7"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    time.sleep(2.5)  # past the heartbeat's grace period (2 x 1 s): the killed trial is stale
    ok(invoke("sweep", "--resume", folder))
    rows = trial_rows(folder)
    states = [row["state"] for row in rows]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1  # the killed trial failed, never a result
    assert rows[1]["state"] == "FAIL"


@pytest.mark.parametrize(("sweep", "message"), [
    ({"space": {"optim.lrr": {"uniform": [0.0, 1.0]}}}, "sweep.space.optim.lrr: 0.0 gives an invalid spec"),
    ({"space": {"optim.lr": {"log_uniform": [0.0, 1.0]}}}, "log_uniform needs a positive low bound"),
    ({"space": {"optim.lr": {"normal": [0.0, 1.0]}}}, "optim.lr: write one of {log_uniform: [lo, hi]}"),
    ({"space": {"optim.lr": {"uniform": [1e-3, 1e-4]}}}, "uniform takes [low, high] with low < high"),
    ({"metric": "bleu", "space": {"optim.lr": {"choices": [1e-3]}}}, "sweep.metric: 'bleu' is not a metric"),
    ({"sampler": "grid", "space": {"optim.lr": {"uniform": [1e-4, 1e-3]}}}, "the grid sampler needs choices"),
    ({"space": {"train.batch_size": {"choices": [0, 8]}}}, "sweep.space.train.batch_size: 0 gives an invalid spec"),
])
def test_a_bad_sweep_section_is_a_clear_error(sweep: dict[str, Any], message: str, tmp_path: Path,
                                              tiny_bert: Path) -> None:
    spec = ner_sweep_spec(tmp_path, tiny_bert)
    document = yaml.safe_load(spec.read_text())
    document["sweep"] = {"trials": 2, **sweep}
    spec.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = invoke("sweep", spec, "--sweep-dir", tmp_path / "sweep")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "sweep").exists()
