"""status.json in every run directory, kept current, and `homofit runs` listing them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from test_cli import invoke, ok
from test_train import nan_on_call, run_killed, write_spec


def status_of(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def listed(root: Path) -> dict[str, dict]:
    result = ok(invoke("runs", root, "--json"))
    return {Path(run["path"]).name: run for run in json.loads(result.stdout)}


def test_runs_lists_finished_failed_and_killed_runs(tiny_bert: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "runs"
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"save_every": 3})
    ok(invoke("train", spec, "--run-dir", root / "finished"))
    finished = status_of(root / "finished")
    test = json.loads((root / "finished" / "reports" / "test.json").read_text())
    assert finished["status"] == "finished" and finished["step"] == finished["total_steps"] == 15
    assert finished["task"] == "ner" and finished["model"] == str(tiny_bert) and finished["metric"] == "f1"
    assert finished["test"] == test["f1"] and finished["ended"] == "trained every step"
    assert finished["best_step"] == json.loads((root / "finished" / "checkpoints" / "best" / "homofit.json")
                                               .read_text())["step"]

    killed = run_killed(["train", spec, "--run-dir", root / "killed"], after_batches=12)
    assert killed.returncode == -signal.SIGKILL
    assert status_of(root / "killed")["status"] == "running"  # nobody was left to write otherwise
    assert status_of(root / "killed")["step"] > 0  # kept current while it trained

    with monkeypatch.context() as patch:
        nan_on_call(patch, 5)
        assert invoke("train", spec, "--run-dir", root / "seeds" / "failed").exit_code == 4
    failed = status_of(root / "seeds" / "failed")
    assert failed["status"] == "failed" and "non-finite at step 3" in failed["error"]

    runs = listed(root)
    assert set(runs) == {"finished", "killed", "failed"}  # one folder deeper too (seeds, sweeps)
    assert runs["finished"]["status"] == "finished" and runs["finished"]["test"] == test["f1"]
    assert runs["killed"]["status"] == "died"  # status says running, but its process is gone
    assert runs["failed"]["status"] == "failed" and "non-finite" in runs["failed"]["error"]

    table = ok(invoke("runs", root)).stdout
    for text in ("finished", "died", "failed", "15/15", "ner", "f1"):
        assert text in table
    assert "non-finite" in table  # the error of a failed run is printed under the table


def test_a_resumed_run_is_running_again_then_finished(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"save_every": 3})
    run = tmp_path / "run"
    run_killed(["train", spec, "--run-dir", run], after_batches=12)
    ok(invoke("train", "--resume", run))
    assert status_of(run)["status"] == "finished" and status_of(run)["step"] == 15


def test_runs_of_a_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    result = invoke("runs", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such folder" in result.output


def test_dev_split_holds_out_a_stratified_seeded_share_and_records_its_rows(tiny_bert: Path, tmp_path: Path) -> None:
    from homofit.train import dev_split_rows

    class Example:
        def __init__(self, label: str) -> None:
            self.labels = [label]

    examples = [Example("pos")] * 80 + [Example("neg")] * 20 + [Example("rare")]
    train_rows, dev_rows = dev_split_rows(examples, 0.1, 0)
    assert sorted(train_rows + dev_rows) == list(range(101)) and not set(train_rows) & set(dev_rows)
    held_out = [examples[row].labels[0] for row in dev_rows]
    assert held_out.count("pos") == 8 and held_out.count("neg") == 2  # each class keeps its share
    assert dev_split_rows(examples, 0.1, 0) == (train_rows, dev_rows) != dev_split_rows(examples, 0.1, 1)

    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None, "dev_split": 0.25},
                      train={"save_every": None})
    run = tmp_path / "run"
    ok(invoke("train", spec, "--run-dir", run))
    meta = json.loads((run / "meta.json").read_text())
    assert meta["dev_split"]["fraction"] == 0.25 and len(meta["dev_split"]["dev_rows"]) == 12  # of 48 sentences
    assert meta["dev_split"]["train_examples"] == 36
    dev = json.loads((run / "reports" / "dev.json").read_text())
    assert len((run / "predictions" / "dev.jsonl").read_text().splitlines()) == 12
    scored = ok(invoke("eval", "--checkpoint", run / "checkpoints" / "best", "--split", "dev"))
    assert f"{dev['f1']:.4f}" in scored.stdout  # eval carves the same dev rows


def test_dev_and_dev_split_together_are_refused(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev_split": 0.1})
    result = invoke("train", spec)
    assert result.exit_code == 2 and "data.dev or data.dev_split, not both" in result.output
