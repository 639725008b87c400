"""The training engine on the tiny BERT and the shipped NER sample: exact gradient accumulation, resume after
SIGKILL (bit-equal to an uninterrupted run), atomic saves, signals, non-finite losses, early stopping,
eval_every, save_every and save_last, and the checks made before a run directory exists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_cli import invoke, ok

from homofit.train import epoch_batches

NER_DATA = Path(__file__).parent / "data" / "ner"
DRIVER = Path(__file__).parent / "train_driver.py"


def write_spec(path: Path, model_path: Path, **sections: dict[str, Any]) -> Path:
    """48 train sentences in 71 windows; batch 8 = 9 micro-batches an epoch, in steps of 2 (5 steps an epoch)."""
    spec: dict[str, Any] = {
        "task": {"type": "ner"},
        "data": {"train": str(NER_DATA / "train.conll"), "dev": str(NER_DATA / "dev.conll"),
                 "test": str(NER_DATA / "test.conll"), "max_length": 64, "stride": 16},
        "model": {"name_or_path": str(model_path)},
        "optim": {"lr": 1.0e-3, "warmup_ratio": 0.1},
        "train": {"epochs": 3, "batch_size": 8, "grad_accum": 2, "eval_every": 4, "save_every": 3, "log_every": 1,
                  "device": "cpu", "precision": "fp32", "seed": 11},
        "output": {"dir": str(path.parent / "runs")},
    }
    for name, values in sections.items():
        spec[name] = {**spec[name], **values}
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def events(run: Path, kind: str) -> list[dict[str, Any]]:
    """Events of one kind without their wall-clock fields."""
    return [{key: value for key, value in event.items() if key not in {"time", "steps_per_s"}}
            for event in read_jsonl(run / "metrics.jsonl") if event["event"] == kind]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def assert_same_weights(left: Path, right: Path) -> None:
    a, b = weights(left), weights(right)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0.0, atol=1e-6, msg=name)


def run_killed(args: list[Any], **kill: int) -> subprocess.CompletedProcess:
    env = {**os.environ, **{f"HOMOFIT_TEST_KILL_{key.upper()}": str(value) for key, value in kill.items()}}
    return subprocess.run([sys.executable, str(DRIVER), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    ok(invoke("train", write_spec(folder / "spec.yaml", tiny_bert), "--run-dir", folder / "run"))
    return folder / "run"


# -- batches ----------------------------------------------------------------------------------------------


def test_epoch_batches_are_the_random_sampler_order_and_depend_on_the_epoch() -> None:
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(5)).tolist()
    assert [index for batch in epoch_batches(10, 4, 5, 0) for index in batch] == expected
    assert [len(batch) for batch in epoch_batches(10, 4, 5, 0)] == [4, 4, 2]
    assert epoch_batches(10, 4, 5, 1) != epoch_batches(10, 4, 5, 0)
    assert epoch_batches(10, 4, 5, 1) == epoch_batches(10, 4, 5, 1)


def test_each_process_takes_its_slice_of_the_same_global_batches() -> None:
    whole = epoch_batches(10, 4, 5, 0)
    slices = [epoch_batches(10, 2, 5, 0, rank, 2) for rank in (0, 1)]
    assert [a + b for a, b in zip(*slices)] == whole


# -- exact gradient accumulation ------------------------------------------------------------------------


def test_accumulation_equals_the_large_batch(tiny_bert: Path, tmp_path: Path) -> None:
    """Batch 16 x 1 and batch 4 x 4 see the same examples per step; with the loss divided once by the words in
    the window (micro-batches hold different numbers of words), losses and weights agree.

    SGD, because Adam turns the rounding noise of near-zero gradients (e.g. the attention key bias, whose
    true gradient is 0) into full-size steps. Measured: the largest weight difference after 8 steps is 1.2e-7
    here, and 6.7e-3 when each micro-batch's mean is divided by the accumulation count (the old weighting)."""
    runs = {}
    for batch, accumulation in ((16, 1), (4, 4)):
        spec = write_spec(tmp_path / f"spec-{batch}.yaml", tiny_bert, model={"dropout": 0.0},
                          optim={"name": "sgd", "lr": 0.5},
                          data={"dev": None, "test": None},
                          train={"batch_size": batch, "grad_accum": accumulation, "max_steps": 8, "save_every": None,
                                 "eval_every": "epoch"})
        runs[batch] = tmp_path / f"run-{batch}"
        ok(invoke("train", spec, "--run-dir", runs[batch]))
    losses = {batch: [event["loss"] for event in events(run, "train")] for batch, run in runs.items()}
    assert len(losses[16]) == 8
    # equal up to float rounding (other padded shapes, another summation order)
    torch.testing.assert_close(torch.tensor(losses[4]), torch.tensor(losses[16]), rtol=1e-6, atol=0.0)
    big, small = weights(runs[16] / "checkpoints" / "last"), weights(runs[4] / "checkpoints" / "last")
    initial = load_file(str(tiny_bert / "model.safetensors"))
    for name in big:
        torch.testing.assert_close(small[name], big[name], rtol=0.0, atol=1e-6, msg=name)
    moved = big["bert.embeddings.word_embeddings.weight"] - initial["embeddings.word_embeddings.weight"]
    assert moved.abs().max() > 1e-3  # the weights did change, so equal weights mean equal updates


def test_micro_batches_hold_different_word_counts(tiny_bert: Path) -> None:
    """The case the exact weighting is for: 4-window micro-batches of this sample differ in labelled words."""
    from transformers import AutoTokenizer

    from homofit.config import DataConfig
    from homofit.tasks.ner import NerConfig, NerTask

    task = NerTask(NerConfig(), {})
    examples = task.read(NER_DATA / "train.conll", DataConfig())
    task.initialize(examples, None, None)
    features = task.encode(examples, AutoTokenizer.from_pretrained(tiny_bert), DataConfig(max_length=64, stride=16))
    counts = [sum(label != -100 for index in batch for label in features[index]["labels"])
              for batch in epoch_batches(len(features), 4, 11, 0)]
    assert max(counts) > 1.5 * min(counts)


# -- resume ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kill_after_batches", [8, 13, 22])
def test_killed_run_resumes_to_the_uninterrupted_result(kill_after_batches: int, uninterrupted: Path,
                                                        tiny_bert: Path, tmp_path: Path) -> None:
    """SIGKILL after micro-batch 8 (epoch 0, in the middle of a window), 13 (epoch 1) or 22 (epoch 2), then
    `--resume`: the final weights, every eval line and every train line equal the uninterrupted run's."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert)
    run = tmp_path / "run"
    killed = run_killed(["train", spec, "--run-dir", run], after_batches=kill_after_batches)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    saved_step = json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())["step"]
    assert saved_step == ((kill_after_batches - 1) // 9 * 5 + ((kill_after_batches - 1) % 9) // 2) // 3 * 3
    resumed = ok(invoke("train", "--resume", run))
    assert "resuming at step" in (run / "train.log").read_text()
    assert_same_weights(run / "checkpoints" / "last", uninterrupted / "checkpoints" / "last")
    assert_same_weights(run / "checkpoints" / "best", uninterrupted / "checkpoints" / "best")
    assert events(run, "eval") == events(uninterrupted, "eval")
    assert events(run, "train") == events(uninterrupted, "train")
    assert [event["step"] for event in events(run, "resume")] == [saved_step]
    for report in ("dev.json", "test.json", "test-before.json"):
        assert (run / "reports" / report).read_text() == (uninterrupted / "reports" / report).read_text()
    assert "test (before fine-tuning)" in resumed.output


def test_kill_in_the_middle_of_a_save_leaves_the_previous_checkpoint(tiny_bert: Path, tmp_path: Path) -> None:
    """Saves: last at step 3 (1st), best at step 4 (2nd), last at step 6 (3rd), which is killed between its
    files: `last` is still the complete step-3 folder, it loads and resumes, and the partial folder is ignored."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert)
    run = tmp_path / "run"
    killed = run_killed(["train", spec, "--run-dir", run], in_save=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoints = run / "checkpoints"
    assert (checkpoints / ".last.partial" / "model.safetensors").is_file()
    assert not (checkpoints / ".last.partial" / "trainer_state.json").exists()
    assert json.loads((checkpoints / "last" / "trainer_state.json").read_text())["step"] == 3
    assert json.loads((checkpoints / "best" / "homofit.json").read_text())["step"] == 4
    from transformers import AutoModelForTokenClassification

    for name in ("last", "best"):
        AutoModelForTokenClassification.from_pretrained(checkpoints / name)
    ok(invoke("eval", "--checkpoint", checkpoints / "last", "--split", "dev", "--out", tmp_path / "eval"))
    ok(invoke("train", "--resume", run))
    assert not (checkpoints / ".last.partial").exists()
    assert json.loads((checkpoints / "last" / "trainer_state.json").read_text())["finished"] is True


def test_sigterm_saves_a_resumable_checkpoint_and_exits_3(uninterrupted: Path, tiny_bert: Path,
                                                          tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"epochs": 200, "save_every": None})
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "homofit.cli", "train", str(spec), "--run-dir", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(event["event"] == "train" and event["step"] >= 3
                                                  for event in _events_so_far(run)):
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, stderr
    assert "Traceback" not in stderr and f"homofit train --resume {run}" in " ".join(stderr.split())
    state = json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["step"] >= 3 and not state["finished"]
    # resumed with a shorter run (train.epochs may change on resume), it finishes where the spec now says
    ok(invoke("train", "--resume", run, "train.epochs=3"))
    assert json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())["step"] >= 15


def _events_so_far(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_resume_refuses_a_changed_spec_or_data(uninterrupted: Path, tmp_path: Path) -> None:
    result = invoke("train", "--resume", uninterrupted, "optim.lr=0.01")
    assert result.exit_code == 2
    assert "optim.lr: 0.001 -> 0.01" in result.output and "Traceback" not in result.output
    data = tmp_path / "train.conll"
    data.write_text((NER_DATA / "train.conll").read_text() + "\nextra\tO\n")
    result = invoke("train", "--resume", uninterrupted, f"data.train={data}")
    assert result.exit_code == 2 and "data.train" in result.output


def test_resume_needs_a_run_with_last(tmp_path: Path) -> None:
    result = invoke("train", "--resume", tmp_path)
    assert result.exit_code == 2 and "no checkpoints/last" in result.output


def test_resume_auto_takes_the_newest_unfinished_run_or_starts_one(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"max_steps": 4, "save_every": 2})
    runs = tmp_path / "runs"
    ok(invoke("train", spec, "--resume", "auto"))  # nothing to resume: a new run
    first = sorted(runs.iterdir())
    assert len(first) == 1
    killed = run_killed(["train", spec, "--run-dir", runs / "killed"], after_batches=7)
    assert killed.returncode == -signal.SIGKILL
    ok(invoke("train", spec, "--resume", "auto"))
    assert sorted(runs.iterdir()) == sorted([*first, runs / "killed"])
    assert json.loads((runs / "killed" / "checkpoints" / "last" / "trainer_state.json").read_text())["finished"]


# -- faults ------------------------------------------------------------------------------------------------


def nan_on_call(monkeypatch: pytest.MonkeyPatch, bad_call: int) -> None:
    """The loss of the `bad_call`-th training micro-batch becomes NaN (as a bad batch or an overflow would)."""
    import homofit.losses

    original, calls = homofit.losses.summed_cross_entropy, []

    def loss(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_grad_enabled():  # an evaluation's loss, not a training micro-batch's
            return original(*args, **kwargs)
        calls.append(1)
        total, units = original(*args, **kwargs)
        return (total * float("nan"), units) if len(calls) == bad_call else (total, units)

    monkeypatch.setattr(homofit.losses, "summed_cross_entropy", loss)


def test_non_finite_loss_stops_with_exit_4_and_valid_metrics(tiny_bert: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Micro-batch 5 opens step 3 (windows of 2): the run stops there with exit 4, `last` is the step-2 state,
    no NaN model is kept, and metrics.jsonl parses (the NaN loss is written as null)."""
    nan_on_call(monkeypatch, 5)
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"save_every": 1, "eval_every": 2})
    run = tmp_path / "run"
    result = invoke("train", spec, "--run-dir", run)
    assert result.exit_code == 4, result.output
    message = " ".join(result.output.split())
    assert "non-finite at step 3;" in message and "train.nan_policy: skip" in message
    assert f"last good checkpoint is {run / 'checkpoints' / 'last'}" in message
    assert isinstance(result.exception, SystemExit)  # no traceback
    lines = read_jsonl(run / "metrics.jsonl")
    assert lines[-1]["event"] == "train" and lines[-1]["loss"] is None and lines[-1]["step"] == 3
    assert json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())["step"] == 2
    assert all(torch.isfinite(tensor).all() for tensor in weights(run / "checkpoints" / "last").values())
    assert json.loads((run / "checkpoints" / "best" / "homofit.json").read_text())["step"] == 2


def test_nan_policy_skip_skips_the_update(tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nan_on_call(monkeypatch, 5)
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None, "test": None},
                      train={"nan_policy": "skip", "max_steps": 6, "save_every": None})
    ok(invoke("train", spec, "--run-dir", tmp_path / "run"))
    assert "step 3: non-finite loss; the update is skipped" in (tmp_path / "run" / "train.log").read_text()
    assert all(torch.isfinite(tensor).all() for tensor in weights(tmp_path / "run" / "checkpoints" / "last").values())
    assert [event["step"] for event in events(tmp_path / "run", "train")] == [1, 2, 3, 4, 5, 6]


def test_failed_save_is_one_line_and_keeps_the_previous_checkpoint(tiny_bert: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import homofit.checkpoint

    original, calls = homofit.checkpoint.write_weights, []

    def disk_full_on_the_third_save(folder: Path, model: Any, state_dict: Any = None) -> None:
        calls.append(folder)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(folder, model, state_dict)

    monkeypatch.setattr(homofit.checkpoint, "write_weights", disk_full_on_the_third_save)
    run = tmp_path / "run"
    result = invoke("train", write_spec(tmp_path / "spec.yaml", tiny_bert), "--run-dir", run)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "No space left on device" in result.output and "previous checkpoint there is intact" in result.output
    assert json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())["step"] == 3
    assert not (run / "checkpoints" / ".last.partial").exists()


# -- early stopping, eval_every, save_every, save_last ----------------------------------------------------


def test_patience_stops_after_that_many_evaluations_without_gain(tiny_bert: Path, tmp_path: Path) -> None:
    """lr 0 never changes the model: dev scores tie at every eval, a tie is no gain, so patience 2 stops at
    the third eval; a tie keeps the later checkpoint, so `best` is the last one, and the summary says so."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, optim={"lr": 1.0e-12, "schedule": "constant"},
                      train={"eval_every": 2, "save_every": None, "epochs": 10,
                             "early_stopping": {"patience": 2}})
    run = tmp_path / "run"
    result = ok(invoke("train", spec, "--run-dir", run))
    dev_steps = [event["step"] for event in events(run, "eval") if event["split"] == "dev" and event["step"] >= 0]
    assert dev_steps == [0, 2, 4, 6]
    assert max(event["step"] for event in events(run, "train")) == 6
    assert json.loads((run / "checkpoints" / "best" / "homofit.json").read_text())["step"] == 6
    assert "stopped early" in result.output
    assert "a tie keeps the later step" in result.output


def test_early_stopping_on_another_metric_and_mode(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"eval_every": 5, "save_every": None,
                                                                "early_stopping": {"metric": "recall", "mode": "min"}})
    run = tmp_path / "run"
    ok(invoke("train", spec, "--run-dir", run))
    dev = [event for event in events(run, "eval") if event["split"] == "dev" and event["step"] > 0]
    best = min(dev, key=lambda event: (event["recall"], -event["step"]))  # a tie keeps the later step
    assert json.loads((run / "checkpoints" / "best" / "homofit.json").read_text())["step"] == best["step"]


def test_eval_every_in_steps_and_at_the_end(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"eval_every": 4, "save_every": None})
    run = tmp_path / "run"
    ok(invoke("train", spec, "--run-dir", run))
    assert [event["step"] for event in events(run, "eval") if event["split"] == "dev"] == [0, 4, 8, 12, 15, -1]
    assert {path.name for path in (run / "reports").glob("dev-step*.json")} == {
        f"dev-step{step}.json" for step in (0, 4, 8, 12, 15)}


def test_save_every_writes_a_resumable_last_and_save_last_false_removes_it(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"max_steps": 4, "save_every": 2},
                      output={"save_last": False})
    run = tmp_path / "run"
    killed = run_killed(["train", spec, "--run-dir", run], after_batches=7)
    assert killed.returncode == -signal.SIGKILL
    assert json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())["step"] == 2
    ok(invoke("train", "--resume", run))
    assert not (run / "checkpoints" / "last").exists() and (run / "checkpoints" / "best").is_dir()


def test_save_last_writes_the_final_resumable_state(uninterrupted: Path) -> None:
    state = json.loads((uninterrupted / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"], state["finished"]) == (15, 3, 0, True)
    assert state["tracker"]["metric"] == "f1"
    tensors = torch.load(uninterrupted / "checkpoints" / "last" / "training_state.pt", weights_only=True)
    assert set(tensors) == {"optimizer", "scheduler", "scaler", "log_window_loss", "torch_rng", "cuda_rng"}


# -- checked before a run directory exists ----------------------------------------------------------------


def test_unknown_early_stopping_metric_fails_before_anything_is_created(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"early_stopping": {"metric": "f_1"}})
    for command in ("train", "validate"):
        result = invoke(command, spec)
        assert result.exit_code == 2, result.output
        assert "train.early_stopping.metric: 'f_1'" in result.output and "did you mean 'f1'" in result.output
    assert not (tmp_path / "runs").exists()


def test_patience_without_dev_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None},
                      train={"early_stopping": {"patience": 2}})
    result = invoke("train", spec)
    assert result.exit_code == 2 and "train.early_stopping.patience" in result.output and "no data.dev" in result.output
    assert not (tmp_path / "runs").exists()


def test_grad_accum_larger_than_an_epoch_trains_one_step_an_epoch(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None, "test": None},
                      train={"grad_accum": 50, "epochs": 2, "save_every": None})
    run = tmp_path / "run"
    ok(invoke("train", spec, "--run-dir", run))
    assert [event["step"] for event in events(run, "train")] == [1, 2]
    assert "each optimizer step takes one whole epoch" in (run / "train.log").read_text()


def test_lora_run_resumes_to_the_uninterrupted_result(tiny_bert: Path, tmp_path: Path) -> None:
    """`last` holds merged weights, so a LoRA run resumes from the adapters in trainable.safetensors."""
    lora = {"lora": {"r": 4, "target_modules": ["query", "value"]}}
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, model=lora, train={"max_steps": 6})
    whole, run = tmp_path / "whole", tmp_path / "run"
    ok(invoke("train", spec, "--run-dir", whole))
    killed = run_killed(["train", spec, "--run-dir", run], after_batches=9)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (run / "checkpoints" / "last" / "trainable.safetensors").is_file()
    ok(invoke("train", "--resume", run))
    assert_same_weights(run / "checkpoints" / "last", whole / "checkpoints" / "last")
    assert events(run, "train") == events(whole, "train")


def test_out_of_memory_names_the_batch_and_what_to_change(tiny_bert: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import homofit.losses

    original = homofit.losses.summed_cross_entropy

    def out_of_memory_in_training(*args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled():  # a training step; evaluation runs without gradients
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(homofit.losses, "summed_cross_entropy", out_of_memory_in_training)
    result = invoke("train", write_spec(tmp_path / "spec.yaml", tiny_bert), "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    message = " ".join(result.output.split())
    assert "out of memory at train.batch_size 8" in message and "data.max_length 64" in message
    assert "raise train.grad_accum" in message


def test_out_of_memory_in_evaluation_names_the_eval_batch(tiny_bert: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import homofit.losses

    def out_of_memory(*args: Any, **kwargs: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(homofit.losses, "summed_cross_entropy", out_of_memory)
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"eval_batch_size": 4})
    result = invoke("train", spec, "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    message = " ".join(result.output.split())
    assert "out of memory scoring test at train.eval_batch_size 4" in message
    assert "lower train.eval_batch_size" in message


def test_dev_is_not_scored_again_at_the_end(tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """reports/dev.json comes from the evaluation that saved `best`; only test is scored with the reloaded model."""
    import homofit.train

    original, scored = homofit.train.evaluate, []

    def counting(experiment: Any, split: Any, model: Any = None, sharded: bool = True) -> Any:
        scored.append(split.name)
        return original(experiment, split, model, sharded)

    monkeypatch.setattr(homofit.train, "evaluate", counting)
    run = tmp_path / "run"
    ok(invoke("train", write_spec(tmp_path / "spec.yaml", tiny_bert, train={"save_every": None}), "--run-dir", run))
    dev_reports = sorted(run.glob("reports/dev-step*.json"))
    assert scored.count("dev") == len(dev_reports) == 5  # steps 0, 4, 8, 12, 15
    assert scored.count("test") == 2  # before fine-tuning and with `best`
    best_step = json.loads((run / "checkpoints" / "best" / "homofit.json").read_text())["step"]
    assert (run / "reports" / "dev.json").read_text() == (run / "reports" / f"dev-step{best_step}.json").read_text()


def test_by_length_batches_are_reproducible_cover_the_epoch_and_pad_less() -> None:
    import random as stdlib_random

    rng = stdlib_random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(1000)]
    batches = epoch_batches(1000, 16, 7, 0, lengths=lengths)
    assert sorted(index for batch in batches for index in batch) == list(range(1000))  # every feature once
    assert batches == epoch_batches(1000, 16, 7, 0, lengths=lengths)  # the seed and epoch decide it all
    assert batches != epoch_batches(1000, 16, 7, 1, lengths=lengths)

    def real_share(plan: list[list[int]]) -> float:
        real = sum(lengths[index] for batch in plan for index in batch)
        return real / sum(max(lengths[index] for index in batch) * len(batch) for batch in plan)

    assert real_share(epoch_batches(1000, 16, 7, 0)) < 0.6
    assert real_share(batches) > 0.95
    # accumulation: the micro-batches of each window are the step batch cut in four, the short one last
    micro = epoch_batches(1000, 4, 7, 0, lengths=lengths, accumulation=4)
    assert [[index for batch in micro[start : start + 4] for index in batch] for start in range(0, len(micro), 4)] \
        == batches
    # processes: each takes its slice of the same micro-batches
    slices = [epoch_batches(1000, 2, 7, 0, rank, 2, lengths, accumulation=4) for rank in (0, 1)]
    assert [a + b for a, b in zip(*slices)] == micro
    # under 2 processes each takes its slice of the same global batches
    whole = epoch_batches(1000, 16, 7, 0, lengths=lengths)
    halves = [epoch_batches(1000, 8, 7, 0, rank, 2, lengths) for rank in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == whole[: len(halves[0])]


def test_a_run_that_reaches_its_last_step_is_not_said_to_stop_early(tiny_bert: Path, tmp_path: Path) -> None:
    """Patience runs out exactly at the last step: every step was trained, and the summary says so."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, optim={"lr": 1.0e-12, "schedule": "constant"},
                      train={"eval_every": 2, "save_every": None, "max_steps": 6, "early_stopping": {"patience": 2}})
    result = ok(invoke("train", spec, "--run-dir", tmp_path / "run"))
    assert "trained every step" in result.output and "stopped early" not in result.output


def test_a_run_without_dev_says_what_it_loses(tiny_bert: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None, "test": None},
                      train={"max_steps": 2, "save_every": None})
    result = ok(invoke("train", spec, "--run-dir", tmp_path / "run"))
    assert "no dev set, so checkpoints/best is the final model" in " ".join(result.output.split())
    assert "data.dev is not set: nothing is scored during training" in caplog.text
    written = result.output.split("written")[-1]
    assert "predictions" not in written  # no folder listed that holds nothing
    assert "learning curves" in written and (tmp_path / "run" / "reports" / "learning_curves.png").is_file()


def test_without_a_terminal_the_loss_is_logged_as_plain_lines(tiny_bert: Path, tmp_path: Path) -> None:
    """Piped to a file, under nohup or in CI the bar is not drawn: each log window is a line with the step,
    loss, learning rate, rate and ETA (here in train.log, which gets every console line)."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"max_steps": 4, "log_every": 2, "save_every": None})
    ok(invoke("train", spec, "--run-dir", tmp_path / "run"))
    lines = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if "ETA" in line]
    assert [line.split("step ")[1].split()[0] for line in lines] == ["2/4", "4/4"]
    assert all(" loss " in line and " lr " in line and "steps/s" in line for line in lines)
