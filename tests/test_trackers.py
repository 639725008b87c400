"""output.loggers: each tracker gets the events of metrics.jsonl, read back with the tracker's own reader."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from test_cli import invoke, ok, read_jsonl
from test_train import write_spec


def wandb_records(path: Path) -> list[Any]:
    """The records of an offline W&B run file (.wandb: a 7-byte header, then LevelDB-log chunks in 32 KiB
    blocks: crc32, length, type FULL/FIRST/MIDDLE/LAST), parsed with W&B's own protobuf schema."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, offset, block = [], b"", 7, 32768
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a chunk header is padding
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):  # FULL, LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            records.append(record)
            pending = b""
        elif kind in (2, 3):  # FIRST, MIDDLE
            pending += chunk
        else:  # zero padding at the end of a block
            offset += block - offset % block
    return records


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    folder = tmp_path_factory.mktemp("tracked")
    spec = write_spec(folder / "spec.yaml", tiny_bert, output={"loggers": ["tensorboard", "mlflow", "wandb"]},
                      train={"save_every": None})
    ok(invoke("train", spec, "--run-dir", folder / "runs" / "run"))
    return folder / "runs" / "run"


def train_losses(run: Path) -> list[tuple[int, float]]:
    return [(event["step"], event["loss"]) for event in read_jsonl(run / "metrics.jsonl") if event["event"] == "train"]


def dev_f1(run: Path) -> list[tuple[int, float]]:
    return [(event["step"], event["f1"]) for event in read_jsonl(run / "metrics.jsonl")
            if event["event"] == "eval" and event["split"] == "dev" and event["step"] >= 0]


def test_tensorboard_gets_every_event(tracked_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tracked_run / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "train/steps_per_s", "dev/f1", "dev/loss", "test-before/f1"} <= set(scalars)
    assert [(item.step, pytest.approx(item.value))
            for item in events.Scalars("train/loss")] == train_losses(tracked_run)
    assert [(item.step, pytest.approx(item.value)) for item in events.Scalars("dev/f1")] == dev_f1(tracked_run)
    test = json.loads((tracked_run / "reports" / "test.json").read_text())
    assert events.Scalars("final/test/f1")[0].value == pytest.approx(test["f1"])
    assert "spec" in events.Tags()["tensors"] or "spec/text_summary" in events.Tags()["tensors"]


def test_mlflow_gets_every_event_parameters_and_status(tracked_run: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tracked_run.parent / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("ner").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["optim.lr"] == "0.001" and run.data.params["train.batch_size"] == "8"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(metric.step, pytest.approx(metric.value)) for metric in history] == train_losses(tracked_run)
    assert [(metric.step, pytest.approx(metric.value)) for metric in
            client.get_metric_history(run.info.run_id, "dev/f1")] == dev_f1(tracked_run)
    test = json.loads((tracked_run / "reports" / "test.json").read_text())
    assert run.data.metrics["final/test/f1"] == pytest.approx(test["f1"])


def test_wandb_offline_run_gets_every_event(tracked_run: Path) -> None:
    [path] = list((tracked_run / "wandb").glob("offline-run-*/run-*.wandb"))
    records = wandb_records(path)
    history = []
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history.append(items)
    losses = [(row["_step"], row["train/loss"]) for row in history if "train/loss" in row]
    assert [(step, pytest.approx(loss)) for step, loss in losses] == train_losses(tracked_run)
    assert [(row["_step"], row["dev/f1"]) for row in history if "dev/f1" in row] == \
        [(step, pytest.approx(value)) for step, value in dev_f1(tracked_run)]
    config = {item.key: json.loads(item.value_json) for record in records  # the spec, in the run record
              if record.WhichOneof("record_type") == "run" for item in record.run.config.update}
    assert config["optim"]["lr"] == 0.001 and config["task"]["type"] == "ner"
    summary = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for record in records
               if record.WhichOneof("record_type") == "summary" for item in record.summary.update}
    test = json.loads((tracked_run / "reports" / "test.json").read_text())
    assert summary["final/test/f1"] == pytest.approx(test["f1"])


def test_a_tracker_that_is_not_installed_is_named_before_any_work(tiny_bert: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import homofit.trackers

    real = homofit.trackers.importlib.util.find_spec
    monkeypatch.setattr(homofit.trackers.importlib.util, "find_spec",
                        lambda name, *args: None if name == "wandb" else real(name, *args))
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, output={"loggers": ["wandb"]})
    result = invoke("train", spec, "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and "output.loggers: wandb needs the wandb package" in result.output
    assert "pip install wandb" in result.output and not (tmp_path / "run").exists()


def test_a_resumed_run_continues_the_same_tracked_run(tiny_bert: Path, tmp_path: Path) -> None:
    """SIGKILL in epoch 1, then --resume: one MLflow run (the id kept in trackers.json) and one TensorBoard
    folder hold every training step; the steps logged after the last save and before the kill are logged again
    with the same values, as the resumed run recomputes them exactly."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from test_train import run_killed

    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, output={"loggers": ["tensorboard", "mlflow"]})
    run = tmp_path / "run"
    killed = run_killed(["train", spec, "--run-dir", run], after_batches=13)
    assert killed.returncode < 0, killed.stderr
    run_id = json.loads((run / "trackers.json").read_text())["mlflow_run_id"]
    ok(invoke("train", "--resume", run))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")  # output.dir
    [tracked] = client.search_runs([client.get_experiment_by_name("ner").experiment_id])
    assert tracked.info.run_id == run_id and tracked.info.status == "FINISHED"
    expected = dict(train_losses(run))
    logged = {(metric.step, metric.value) for metric in client.get_metric_history(run_id, "train/loss")}
    assert {step for step, _ in logged} == set(expected)
    for step, value in logged:
        assert value == pytest.approx(expected[step])
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {item.step for item in events.Scalars("train/loss")} == set(expected)
    assert events.Scalars("final/test/f1")[-1].value == pytest.approx(tracked.data.metrics["final/test/f1"])
