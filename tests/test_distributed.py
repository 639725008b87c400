"""Distributed training equals one process (CPU, gloo, tiny BERT): 2 processes x batch 4 and 1 process x batch 8
give the same losses, weights and (sharded) eval scores; a user error keeps exit code 2 under --nproc; a
killed process ends the job at once with a message; kill and resume under torchrun ends where an
uninterrupted run does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).parent / "data" / "ner"
REPO = Path(__file__).parent.parent
pytestmark = pytest.mark.slow  # each test starts several processes


def write_spec(folder: Path, model: Path, **train: Any) -> Path:
    spec = {
        "task": {"type": "ner"},
        "data": {"train": str(DATA / "train.conll"), "dev": str(DATA / "dev.conll"), "test": str(DATA / "test.conll"),
                 "max_length": 64, "max_eval_samples": 15},  # 15: the shards are unequal
        "model": {"name_or_path": str(model), "dropout": 0.0},
        "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9},
        "train": {"max_steps": 20, "batch_size": 8, "eval_batch_size": 4, "eval_every": 10, "log_every": 1,
                  "device": "cpu", "precision": "fp32", "seed": 11, **train},
        "output": {"dir": str(folder / "runs")},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def torchrun(*args: Any, env: dict[str, str] | None = None, script: str | None = None) -> subprocess.CompletedProcess:
    target = [script] if script else ["-m", "homofit.cli"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *target,
               *[str(arg) for arg in args]]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def homofit(*args: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "homofit.cli", *[str(arg) for arg in args]], capture_output=True,
                          text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def events(run: Path, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{key: value for key, value in line.items() if key not in ("steps_per_s", "time")} for line in lines
            if line["event"] == kind]


def weights(checkpoint: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(checkpoint / "model.safetensors")


def max_difference(first: dict[str, Any], second: dict[str, Any]) -> float:
    assert first.keys() == second.keys()
    return max(float((first[key] - second[key]).abs().max()) for key in first)


def test_two_processes_compute_what_one_does(tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert)
    one = homofit("train", spec, "--run-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = torchrun("train", spec, "train.batch_size=4", "--run-dir", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert "batch 4 x 1 accumulation x 2 processes = 8" in " ".join(
        (tmp_path / "two" / "train.log").read_text().split())
    losses_one = [line["loss"] for line in events(tmp_path / "one", "train")]
    losses_two = [line["loss"] for line in events(tmp_path / "two", "train")]
    assert len(losses_one) == 20 and losses_two == pytest.approx(losses_one, rel=1e-5, abs=1e-6)
    assert max_difference(weights(tmp_path / "one" / "checkpoints" / "last"),
                          weights(tmp_path / "two" / "checkpoints" / "last")) < 1e-5
    # evaluation is sharded (15 dev sentences in 4 batches dealt to 2 processes) and equals one process exactly:
    # every score, and the eval loss of the same weights (step 0); after training, the eval loss follows the
    # weights, which agree to 1e-5
    evals_one, evals_two = events(tmp_path / "one", "eval"), events(tmp_path / "two", "eval")
    assert [without_loss(event) for event in evals_two] == [without_loss(event) for event in evals_one]
    for first, second in zip(evals_one, evals_two):
        assert second["loss"] == (first["loss"] if first["step"] == 0 else pytest.approx(first["loss"], rel=1e-5))
    for report in ("dev-step0.json", "dev-step10.json", "test-before.json"):
        one_report, two_report = (json.loads((tmp_path / run / "reports" / report).read_text())
                                  for run in ("one", "two"))
        assert without_loss(two_report) == without_loss(one_report)
        assert two_report["loss"] == (one_report["loss"] if "step0" in report or "before" in report
                                      else pytest.approx(one_report["loss"], rel=1e-5))


def without_loss(event: dict) -> dict:
    return {key: value for key, value in event.items() if key != "loss"}


def test_a_user_error_keeps_exit_code_2_under_nproc(tmp_path: Path, tiny_bert: Path) -> None:
    broken = tmp_path / "broken.conll"
    broken.write_text("a\tO\nb\tB-x\tfoo\tbar\nc\tNOT-A-TAG\n", encoding="utf-8")
    spec = write_spec(tmp_path, tiny_bert)
    result = homofit("train", spec, f"data.train={broken}", "--nproc", "2", "--run-dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    assert "broken.conll:2" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_killed_process_ends_the_job_at_once(tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert, max_steps=2000, dist_timeout_s=30)
    start = time.monotonic()
    killed = torchrun("train", spec, "--run-dir", tmp_path / "run", script=str(REPO / "tests" / "train_driver.py"),
                      env={"HOMOFIT_TEST_KILL_AFTER_BATCHES": "5", "HOMOFIT_TEST_KILL_RANK": "1"})
    assert killed.returncode != 0 and time.monotonic() - start < 120  # not the 2,000 steps, not a hang
    assert "exitcode" in killed.stderr and "-9" in killed.stderr  # the launcher names the process and the signal


def test_kill_and_resume_under_torchrun_ends_like_an_uninterrupted_run(tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert, save_every=5, dist_timeout_s=30)
    whole = torchrun("train", spec, "train.batch_size=4", "--run-dir", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = torchrun("train", spec, "train.batch_size=4", "--run-dir", tmp_path / "cut",
                      script=str(REPO / "tests" / "train_driver.py"),
                      env={"HOMOFIT_TEST_KILL_AFTER_BATCHES": "13", "HOMOFIT_TEST_KILL_RANK": "1"})
    assert killed.returncode != 0
    trainer_state = json.loads((tmp_path / "cut" / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert 5 <= trainer_state["step"] < 20
    resumed = torchrun("train", "--resume", tmp_path / "cut")
    assert resumed.returncode == 0, resumed.stderr
    assert max_difference(weights(tmp_path / "whole" / "checkpoints" / "last"),
                          weights(tmp_path / "cut" / "checkpoints" / "last")) == 0.0
    assert events(tmp_path / "cut", "eval")[-2:] == events(tmp_path / "whole", "eval")[-2:]


def test_fsdp_two_processes_compute_what_one_does(tmp_path: Path, tiny_bert: Path) -> None:
    """train.strategy: fsdp (fully_shard over gloo on the CPU): the same losses and weights as one process, the
    checkpoints hold the whole gathered weights, and they load in one process."""
    spec = write_spec(tmp_path, tiny_bert, max_steps=10, eval_every=5)
    one = homofit("train", spec, "--run-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = torchrun("train", spec, "train.batch_size=4", "train.strategy=fsdp", "--run-dir", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    losses_one = [line["loss"] for line in events(tmp_path / "one", "train")]
    losses_two = [line["loss"] for line in events(tmp_path / "two", "train")]
    assert losses_two == pytest.approx(losses_one, rel=1e-5, abs=1e-6)
    for name in ("best", "last"):
        assert max_difference(weights(tmp_path / "one" / "checkpoints" / name),
                              weights(tmp_path / "two" / "checkpoints" / name)) < 1e-5
    for first, second in zip(events(tmp_path / "one", "eval"), events(tmp_path / "two", "eval")):
        assert without_loss(second) == pytest.approx(without_loss(first), abs=1e-9)
        assert second["loss"] == pytest.approx(first["loss"], rel=1e-5)  # follows the weights, equal to 1e-5
    evaluated = homofit("eval", "--checkpoint", tmp_path / "two" / "checkpoints" / "best", "--split", "dev")
    assert evaluated.returncode == 0, evaluated.stderr
    refused = torchrun("train", "--resume", tmp_path / "two")
    assert refused.returncode != 0 and "do not resume yet" in refused.stderr


def test_sharded_generation_scores_equal_one_process(tmp_path: Path, tiny_bert: Path) -> None:
    """Translation (BERT2BERT from the tiny BERT): dev and test generated in shards over 2 processes give
    exactly the single-process reports."""
    generation = Path(__file__).parent / "data" / "generation" / "multi30k"
    spec = {
        "task": {"type": "translation", "generation": {"max_new_tokens": 6}},
        "data": {"train": str(generation / "train.en"), "dev": str(generation / "val.en.gz"),
                 "test": str(generation / "val.en.gz"), "max_length": 48},
        "model": {"name_or_path": str(tiny_bert), "dropout": 0.0},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"max_steps": 4, "batch_size": 8, "eval_batch_size": 3, "eval_every": 4, "device": "cpu",
                  "precision": "fp32", "seed": 3},
        "output": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    one = homofit("train", path, "--run-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = torchrun("train", path, "train.batch_size=4", "--run-dir", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    for report in ("dev-step0.json", "test-before.json"):  # the same weights: identical generations and scores
        assert json.loads((tmp_path / "two" / "reports" / report).read_text()) == \
            json.loads((tmp_path / "one" / "reports" / report).read_text())
    first = [json.loads(line)["generated"] for line in (tmp_path / "one" / "predictions" / "test-before.jsonl").open()]
    second = [json.loads(line)["generated"] for line in (tmp_path / "two" / "predictions" / "test-before.jsonl").open()]
    assert first == second and len(first) == 10  # the whole file: 4 batches of 3, 3, 3 and 1
