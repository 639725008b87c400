"""The recipe as plain functions: setup -> fit -> test. No callbacks: the loop reads top to bottom."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homofit.checkpoint import is_homofit_checkpoint, read_checkpoint_state, save_checkpoint
from homofit.config import config_to_dict, dump_config
from homofit.errors import HomofitError
from homofit.rundir import RunDir, create_run_dir, run_metadata
from homofit.tasks import Task, build_task

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.runtime import Runtime

log = logging.getLogger("homofit")


@dataclass
class Split:
    """One data split: examples as read, and the features the model sees."""

    name: str
    path: Path
    examples: list[Any]
    features: list[dict]


@dataclass
class Experiment:
    config: Any
    task: Task
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    runtime: Runtime
    run: RunDir
    splits: dict[str, Split]


@dataclass
class FitResult:
    steps: int
    best_step: int | None
    best_score: float | None
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)


# -- setup ------------------------------------------------------------------------------------------------


def read_splits(task: Task, config: Any, names: tuple[str, ...] = ("train", "dev", "test")) -> dict[str, tuple[Path, list]]:
    """Read each split named in data.*, capped by max_train_samples / max_eval_samples."""
    data = config.data
    read = {}
    for name in names:
        path = getattr(data, name)
        if path is None:
            continue
        examples = task.read(path, data)
        if not examples:
            raise HomofitError(f"data.{name}: {path} holds no examples.")
        cap = data.max_train_samples if name == "train" else data.max_eval_samples
        read[name] = (path, examples[:cap] if cap else examples)
    return read


def setup(config: Any, run_dir: Path | None, overrides: list[str]) -> Experiment:
    """Read the data, build the task, tokenizer and model, and create the run directory."""
    from homofit.model import apply_lora, count_parameters, freeze_parameters, load_tokenizer
    from homofit.runtime import build_runtime, seed_everything

    if config.data.train is None:
        raise HomofitError("data.train: no training file given; set data.train in the spec or data.train=PATH.")
    previous_labels = None
    start_from_checkpoint = is_homofit_checkpoint(config.model.name_or_path)
    task_state: dict[str, Any] = {}
    if start_from_checkpoint:
        state = read_checkpoint_state(Path(config.model.name_or_path))
        if state.task_type != config.task.type:
            raise HomofitError(f"model.name_or_path: the checkpoint was trained for task '{state.task_type}', "
                               f"not '{config.task.type}'.")
        task_state, previous_labels = state.task_state, state.task_state.get("labels")
    task = build_task(config.task, task_state)
    raw_splits = read_splits(task, config)
    new_labels = task.set_labels(raw_splits["train"][1], previous_labels)

    runtime = build_runtime(config.train.device, config.train.precision)
    seed_everything(config.train.seed)
    tokenizer = load_tokenizer(config.model.name_or_path, config.model)
    prepare_tokenizer(task, tokenizer)
    model = task.build_model(config.model.name_or_path, config.model, from_checkpoint=start_from_checkpoint)
    freeze_parameters(model, config.model.freeze, config.model.freeze_layers)
    if config.model.lora is not None:
        model = apply_lora(model, config.model.lora)
    model.to(runtime.device)
    splits = {name: Split(name, path, examples, task.encode(examples, tokenizer, config.data))
              for name, (path, examples) in raw_splits.items()}
    # The run directory comes after everything a user can get wrong, so a failed start leaves none behind.
    run = create_run_dir(run_dir, config.output.dir, config.output.name or config.task.type) if runtime.is_main else None
    _attach_log_file(run)
    if new_labels and previous_labels:
        log.warning("labels new to the checkpoint extend its head: %s", ", ".join(new_labels))
    trainable, total = count_parameters(model)
    log.info("%s: %s parameters, %s trainable; %d labels; %s", config.model.name_or_path, f"{total:,}",
             f"{trainable:,}", len(task.labels), runtime.describe())
    if run is not None:
        run.config.write_text(dump_config(config), encoding="utf-8")
        meta = run_metadata(overrides, {name: split.path for name, split in splits.items()},
                            runtime.describe(), config.train.seed)
        run.meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return Experiment(config, task, tokenizer, model, runtime, run, splits)


def prepare_tokenizer(task: Task, tokenizer: PreTrainedTokenizerBase) -> None:
    """Let a task add what it needs to the tokenizer (e.g. marker tokens) before its model is built;
    the tokenizer is saved with every checkpoint, so `eval` and `predict` get the same one."""
    prepare = getattr(task, "prepare_tokenizer", None)
    if prepare is not None:
        prepare(tokenizer)


def _attach_log_file(run: RunDir | None) -> None:
    if run is None:
        return
    log.setLevel(logging.DEBUG)  # train.log keeps every step, whoever set up the console (CLI, tests, a notebook)
    handler = logging.FileHandler(run.log, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)


# -- evaluation -------------------------------------------------------------------------------------------


def predict_split(model: PreTrainedModel, task: Task, tokenizer: PreTrainedTokenizerBase, split: Split,
                  batch_size: int, runtime: Runtime) -> list[Any]:
    """Predictions for every example of a split, in batches sorted by length (less padding)."""
    import torch

    order = sorted(range(len(split.features)), key=lambda index: len(split.features[index]["input_ids"]))
    outputs: list[Any] = [None] * len(order)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), runtime.autocast():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = task.collate([split.features[index] for index in indices], tokenizer)
            batch = {key: value.to(runtime.device) for key, value in batch.items()}
            for index, output in zip(indices, task.predict_batch(model, batch)):
                outputs[index] = output
    model.train(was_training)
    return task.decode(split.examples, split.features, outputs)


def evaluate(experiment: Experiment, split: Split, model: PreTrainedModel | None = None) -> tuple[dict, list]:
    config = experiment.config
    batch_size = config.train.eval_batch_size or config.train.batch_size
    predictions = predict_split(model or experiment.model, experiment.task, experiment.tokenizer, split, batch_size,
                                experiment.runtime)
    return experiment.task.score(split.examples, predictions), predictions


def write_report(run: RunDir, name: str, task: Task, report: dict[str, Any]) -> None:
    run.report(name, "json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    run.report(name, "txt").write_text(task.format_report(report), encoding="utf-8")
    write_report_figures(task, report, run.reports, name)


def write_report_figures(task: Task, report: dict[str, Any], folder: Path, name: str) -> None:
    """Figures a task draws from its report (e.g. a confusion matrix PNG), when it draws any."""
    write_figures = getattr(task, "write_report_figures", None)
    if write_figures is not None:
        write_figures(report, folder, name)


def write_predictions(path: Path, task: Task, examples: list, predictions: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in task.prediction_records(examples, predictions):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- training ---------------------------------------------------------------------------------------------


@dataclass
class BestTracker:
    """Keeps the best eval score and counts evaluations without improvement, for early stopping."""

    metric: str
    mode: str
    patience: int | None
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0

    def update(self, report: dict[str, Any], step: int) -> bool:
        """Record one eval; True when it is the best so far."""
        if self.metric not in report:
            raise HomofitError(f"train.early_stopping.metric: '{self.metric}' is not in the eval report; "
                               f"choose one of {', '.join(key for key, value in report.items() if isinstance(value, float))}.")
        score = report[self.metric]
        improved = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
        if improved:
            self.best, self.best_step, self.bad_evals = score, step, 0
        else:
            self.bad_evals += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_evals >= self.patience


def make_train_loader(experiment: Experiment) -> torch.utils.data.DataLoader:
    import torch

    features = experiment.splits["train"].features
    generator = torch.Generator().manual_seed(experiment.config.train.seed)
    sampler: Any = torch.utils.data.RandomSampler(features, generator=generator)
    if experiment.runtime.world_size > 1:
        sampler = torch.utils.data.DistributedSampler(features, seed=experiment.config.train.seed)
    return torch.utils.data.DataLoader(
        features, batch_size=experiment.config.train.batch_size, sampler=sampler,
        collate_fn=lambda batch: experiment.task.collate(batch, experiment.tokenizer),
    )


def fit(experiment: Experiment, progress: Any) -> FitResult:
    """Train with periodic evaluation on dev, keeping the best checkpoint and stopping early on a plateau."""
    import torch

    from homofit.optim import build_optimizer, build_scheduler

    config, runtime, task = experiment.config, experiment.runtime, experiment.task
    model = experiment.model
    train_model = _wrap_distributed(model, runtime)
    loader = make_train_loader(experiment)
    accumulation = config.train.grad_accum
    steps_per_epoch = math.ceil(len(loader) / accumulation)
    total_steps = config.train.max_steps or math.ceil(config.train.epochs * steps_per_epoch)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, total_steps)
    scaler = torch.amp.GradScaler(enabled=runtime.dtype == torch.float16)
    tracker = BestTracker(config.train.early_stopping.metric or task.headline_metric,
                          config.train.early_stopping.mode, config.train.early_stopping.patience)
    eval_every = steps_per_epoch if config.train.eval_every == "epoch" else config.train.eval_every
    log.info("training %d steps (%d per epoch, batch %d x %d accumulation x %d processes)", total_steps,
             steps_per_epoch, config.train.batch_size, accumulation, runtime.world_size)
    if "dev" in experiment.splits and config.train.eval_before_training:
        _evaluate_and_keep(experiment, tracker, step=0, progress=progress)

    task_bar = progress.add_task("train", total=total_steps, loss="-")
    model.train()
    step, epoch, stopped_early = 0, 0, False
    running_loss = torch.zeros((), device=runtime.device)
    window_start, window_steps = time.perf_counter(), 0
    while step < total_steps and not stopped_early:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        batches = len(loader)
        for batch_index, batch in enumerate(loader):
            batch = {key: value.to(runtime.device, non_blocking=True) for key, value in batch.items()}
            with runtime.autocast():
                loss = task.loss(train_model, batch)
            scaler.scale(loss / accumulation).backward()
            running_loss += loss.detach() / accumulation
            if (batch_index + 1) % accumulation and batch_index + 1 < batches:
                continue
            if config.train.max_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_steps += 1
            progress.advance(task_bar)
            if step % config.train.log_every == 0 or step == total_steps:
                mean_loss = running_loss.item() / window_steps  # the only host sync, once per log window
                rate = window_steps / (time.perf_counter() - window_start)
                _log_event(experiment.run, {"event": "train", "step": step, "epoch": round(step / steps_per_epoch, 3),
                                            "loss": mean_loss, "lr": scheduler.get_last_lr()[0], "steps_per_s": rate})
                progress.update(task_bar, loss=f"{mean_loss:.4f}  {rate:.2f} steps/s")
                running_loss.zero_()
                window_start, window_steps = time.perf_counter(), 0
            if "dev" in experiment.splits and (step % eval_every == 0 or step == total_steps):
                _evaluate_and_keep(experiment, tracker, step=step, progress=progress)
                stopped_early = tracker.should_stop
                if stopped_early:
                    log.info("early stopping at step %d: no gain in %s for %d evaluations", step, tracker.metric,
                             tracker.patience)
            if step >= total_steps or stopped_early:
                break
        epoch += 1
    progress.remove_task(task_bar)
    if runtime.is_main:
        if "dev" not in experiment.splits:
            save_checkpoint(experiment.run.checkpoint("best"), model, experiment.tokenizer, task, config_to_dict(config))
        if config.output.save_last:
            save_checkpoint(experiment.run.checkpoint("last"), model, experiment.tokenizer, task, config_to_dict(config))
    return FitResult(step, tracker.best_step, tracker.best, stopped_early)


def _wrap_distributed(model: PreTrainedModel, runtime: Runtime) -> Any:
    if runtime.world_size == 1:
        return model
    import torch

    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _evaluate_and_keep(experiment: Experiment, tracker: BestTracker, step: int, progress: Any) -> None:
    """Score dev on the main process, keep the checkpoint if it is the best so far; others wait."""
    runtime = experiment.runtime
    if runtime.is_main:
        report, _ = evaluate(experiment, experiment.splits["dev"])
        write_report(experiment.run, f"dev-step{step}", experiment.task, report)
        headline = {key: value for key, value in report.items() if isinstance(value, (int, float))}
        _log_event(experiment.run, {"event": "eval", "split": "dev", "step": step, **headline})
        if step == 0:  # the model before fine-tuning is reported, never kept as the best checkpoint
            log.info("before fine-tuning: dev %s %.4f", tracker.metric, report[tracker.metric])
        else:
            if tracker.update(report, step):
                save_checkpoint(experiment.run.checkpoint("best"), experiment.model, experiment.tokenizer,
                                experiment.task, config_to_dict(experiment.config))
            log.info("step %d: dev %s %.4f (best %.4f at step %d)", step, tracker.metric, report[tracker.metric],
                     tracker.best, tracker.best_step)
    if runtime.world_size > 1:
        import torch

        flags = torch.tensor([tracker.bad_evals, tracker.best_step or 0], device=runtime.device)
        torch.distributed.broadcast(flags, src=0)
        tracker.bad_evals = int(flags[0])


def _log_event(run: RunDir | None, event: dict[str, Any]) -> None:
    if run is None:
        return
    event = {"time": round(time.time(), 3), **event}
    run.append_metrics(event)
    if event["event"] == "train":
        log.debug("step %d  loss %.4f  lr %.3g  %.2f steps/s", event["step"], event["loss"], event["lr"], event["steps_per_s"])
    else:
        log.debug("eval %s step %d  %s", event["split"], event["step"],
                 "  ".join(f"{key} {value:.4f}" for key, value in event.items() if isinstance(value, float) and key != "time"))


# -- the whole recipe -------------------------------------------------------------------------------------


@dataclass
class TrainSummary:
    run: RunDir
    fit: FitResult
    scores: dict[str, dict[str, Any]]


def train(config: Any, run_dir: Path | None, overrides: list[str], progress: Any) -> TrainSummary | None:
    """setup -> fit -> score dev and test with the best checkpoint. Returns None on non-main processes."""
    experiment = setup(config, run_dir, overrides)
    try:
        before = score_before_training(experiment)
        result = fit(experiment, progress)
        if not experiment.runtime.is_main:
            return None
        scores = {**before, **test_best(experiment)}
    finally:
        _close_log(experiment.runtime)
    return TrainSummary(experiment.run, result, scores)


def score_before_training(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Score test with the model as loaded (step 5 of the recipe: compare with the model before fine-tuning).

    Dev is scored before training by `fit` itself (reports/dev-step0.json).
    """
    if not (experiment.runtime.is_main and experiment.config.train.eval_before_training and "test" in experiment.splits):
        return {}
    report, _ = evaluate(experiment, experiment.splits["test"])
    write_report(experiment.run, "test-before", experiment.task, report)
    _log_event(experiment.run, {"event": "eval", "split": "test-before", "step": 0,
                                **{key: value for key, value in report.items() if isinstance(value, float)}})
    return {"test (before fine-tuning)": report}


def test_best(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Reload the best checkpoint exactly as `homofit eval` does and score dev and test with it."""
    best_path = experiment.run.checkpoint("best")
    model = experiment.task.build_model(str(best_path), experiment.config.model, from_checkpoint=True)
    model.to(experiment.runtime.device)
    scores = {}
    for name in ("dev", "test"):
        if name not in experiment.splits:
            continue
        split = experiment.splits[name]
        report, predictions = evaluate(experiment, split, model)
        write_report(experiment.run, name, experiment.task, report)
        write_predictions(experiment.run.prediction_file(name), experiment.task, split.examples, predictions)
        _log_event(experiment.run, {"event": "eval", "split": name, "step": -1,
                                    **{key: value for key, value in report.items() if isinstance(value, float)}})
        scores[name] = report
    return scores


def _close_log(runtime: Runtime) -> None:
    for handler in list(log.handlers):
        if isinstance(handler, logging.FileHandler):
            log.removeHandler(handler)
            handler.close()
    if runtime.world_size > 1:
        import torch

        torch.distributed.destroy_process_group()
