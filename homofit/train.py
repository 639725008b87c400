"""The recipe as plain functions: setup -> fit -> test. No callbacks: the loop reads top to bottom."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homofit.checkpoint import is_homofit_checkpoint, read_checkpoint_state, save_checkpoint
from homofit.config import METHOD_LEARNING_RATES, config_to_dict, dump_config
from homofit.data.windows import IGNORE_INDEX
from homofit.errors import DistributedFailure, HomofitError, NonFiniteLoss, TrainingInterrupted
from homofit.rundir import RunDir, check_writable, create_run_dir, file_sha256, run_metadata
from homofit.state import (
    BestTracker,
    LogWindow,
    TrainState,
    fingerprint,
    fingerprint_changes,
    read_trainer_state,
    restore_trainer_state,
    write_trainer_state,
)
from homofit.tasks import Task, build_task

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.features import FeatureTable
    from homofit.runtime import Runtime

log = logging.getLogger("homofit")


@dataclass
class Split:
    """One data split: examples as read, and the features the model sees."""

    name: str
    path: Path
    examples: list[Any]
    features: FeatureTable | list[dict]  # a FeatureTable in training; eval and predict encode a list


@dataclass(frozen=True)
class TrainingPlan:
    """How many batches, steps and evaluations a run has, worked out once from the spec and the data."""

    batches_per_epoch: int  # micro-batches of this process
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    save_every: int | None
    notes: tuple[str, ...] = ()  # settings that cannot act as written, logged once the run's log is open


@dataclass
class Experiment:
    config: Any
    task: Task
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    runtime: Runtime
    run: RunDir
    splits: dict[str, Split]
    plan: TrainingPlan | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    resume: dict[str, Any] | None = None  # trainer_state.json of the checkpoint a resumed run continues from
    best_dev: tuple[dict, list] | None = None  # the report and predictions of the eval that wrote `best`
    on_eval: Any = None  # called with (step, report) after each dev evaluation past step 0 (sweeps prune there)
    resume_from: Path | None = None  # the `last` a resumed run continues from (every process reads it)
    progress: Any = None  # the run's reporting.PhaseDisplay (a quiet one when none is given)
    trackers: list[Any] = field(default_factory=list)  # output.loggers, on the main process
    status: dict[str, Any] = field(default_factory=dict)  # what status.json says besides its state

    def set_status(self, state: str, **fields: Any) -> None:
        """Keep status.json current (main process): fields given once stay in every later write."""
        self.status.update(fields)
        if self.run is not None:
            self.run.write_status(state, **self.status)


@dataclass
class FitResult:
    steps: int
    best_step: int | None
    best_score: float | None
    stopped_early: bool
    metric: str = ""
    mode: str = "max"
    patience: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


# -- setup ------------------------------------------------------------------------------------------------


def read_splits(task: Task, config: Any, names: tuple[str, ...] = ("train", "dev", "test"),
                notes: list[str] | None = None, carved: dict[str, Any] | None = None) -> dict[str, tuple[Path, list]]:
    """Read each split named in data.*, capped by max_train_samples / max_eval_samples; with data.dev_split,
    dev is carved out of train (its rows go to `carved`). What is worth a warning goes to `notes` (logged once
    the run's log file is open), or is logged at once."""
    notes = notes if notes is not None else _LogNow()
    data = config.data
    uncapped = {}
    for name in names:
        path = getattr(data, name)
        if path is None:
            continue
        examples = task.read(path, data)
        if not examples:
            raise HomofitError(f"data.{name}: {path} holds no examples.")
        uncapped[name] = (path, _check_targets(examples, name, data.skip_empty_targets, notes))
    if data.dev_split is not None and ("dev" in names or "train" in names) and data.train is not None:
        train_path, train_examples = uncapped.get("train") or (data.train, task.read(data.train, data))
        train_rows, dev_rows = dev_split_rows(train_examples, data.dev_split, data.dev_split_seed)
        if carved is not None:
            carved.update(dev_rows=dev_rows, train_examples=len(train_rows))
        uncapped["dev"] = (train_path, [train_examples[row] for row in dev_rows])
        if "train" in uncapped:
            uncapped["train"] = (train_path, [train_examples[row] for row in train_rows])
    read = {}
    for name in names:  # in the order asked for, dev carved out of train included
        if name in uncapped:
            path, examples = uncapped[name]
            cap = data.max_train_samples if name == "train" else data.max_eval_samples
            read[name] = (path, examples[:cap] if cap else examples)
    return read


def dev_split_rows(examples: list[Any], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train rows, dev rows) of data.dev_split: a seeded draw of `fraction` of the examples, stratified by the
    example's class where it has one (classification, relations: each class keeps its share, and a class of two
    or more examples gives dev at least one); examples of a class seen once, and tagged or generation examples,
    are drawn from one pool."""
    import random

    strata: dict[str, list[int]] = {}
    for row, example in enumerate(examples):
        label = getattr(example, "label", None) or getattr(example, "labels", None)
        key = "|".join(label) if isinstance(label, list) else str(label or "")
        strata.setdefault(key, []).append(row)
    pool = sorted(row for key, rows in strata.items() if not key or len(rows) < 2 for row in rows)
    groups = [rows for key, rows in sorted(strata.items()) if key and len(rows) >= 2] + [pool]
    generator = random.Random(seed)
    dev: list[int] = []
    for rows in groups:
        generator.shuffle(rows)
        share = round(fraction * len(rows))
        dev.extend(rows[: max(share, 1) if len(rows) >= 2 else share])
    if not dev or len(dev) == len(examples):
        raise HomofitError(f"data.dev_split: {fraction} of {len(examples)} training examples leaves "
                           f"{'no dev' if not dev else 'no training'} examples; use another fraction or give data.dev.")
    held_out = set(dev)
    return [row for row in range(len(examples)) if row not in held_out], sorted(dev)


class _LogNow(list):
    def append(self, note: str) -> None:
        log.warning("%s", note)


def _check_targets(examples: list[Any], split: str, skip_empty: bool, notes: list[str]) -> list[Any]:
    """Generation examples (they carry `references`) whose every reference is blank: an error in training data
    (the model would learn to stop at once), or dropped and counted with data.skip_empty_targets; in dev and
    test data they are kept and reported."""
    empty = [example for example in examples
             if isinstance(getattr(example, "references", None), list)
             and not any(reference.strip() for reference in example.references)]
    if not empty:
        return examples
    if split == "train" and not skip_empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise HomofitError(f"{empty[0].origin}: empty target in the training data{more}; fill it in, or set "
                           "data.skip_empty_targets: true to drop such examples.")
    if split == "train":
        notes.append(f"data.train: {len(empty)} of {len(examples)} examples have an empty target and are skipped "
                     "(data.skip_empty_targets)")
        skipped = {id(example) for example in empty}
        return [example for example in examples if id(example) not in skipped]
    notes.append(f"data.{split}: {len(empty)} of {len(examples)} examples have an empty reference (first: "
                 f"{empty[0].origin}); they are scored against it")
    return examples


def checkpoint_task_state(path: str, task_type: str) -> dict[str, Any]:
    """The task state of the homofit checkpoint at `path`, which must have been trained for `task_type`."""
    state = read_checkpoint_state(Path(path))
    if state.task_type != task_type:
        raise HomofitError(f"model.name_or_path: the checkpoint was trained for task '{state.task_type}', "
                           f"not '{task_type}'.")
    return state.task_state


def check_training_spec(config: Any, task: Task) -> None:
    """What the loop will need, checked before anything is created (also by `homofit validate`)."""
    stopping = config.train.early_stopping
    check_selectable(stopping.metric or task.headline_metric, task, "train.early_stopping.metric",
                     f"a metric the {task.name} task reports")
    from homofit.trackers import check_trackers

    check_trackers(config.output.loggers)
    if stopping.patience is not None and not has_dev(config):
        raise HomofitError("train.early_stopping.patience: early stopping scores dev, but the spec has no data.dev; "
                           "set data.dev or remove the patience.")


def has_dev(config: Any) -> bool:
    """A dev split to score during training: data.dev, or data.dev_split carved out of train."""
    return config.data.dev is not None or config.data.dev_split is not None


def selectable_metrics(task: Task) -> tuple[str, ...]:
    """What a dev evaluation reports that early stopping and sweeps can select on: the task's headline
    metrics and `loss`, the training loss on dev."""
    return (*task.headline_metrics, "loss")


def lower_is_better(task: Task, metric: str) -> bool:
    """Whether less of `metric` is better: the training loss, and the metrics the task says so of."""
    return metric == "loss" or metric in task.lower_is_better


def check_selectable(metric: str, task: Task, key: str, what: str) -> None:
    """Raise the error that names `key` when `metric` is not one of `selectable_metrics`, with the closest one."""
    import difflib

    choices = selectable_metrics(task)
    if metric not in choices:
        close = difflib.get_close_matches(metric, choices, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise HomofitError(f"{key}: '{metric}' is not {what}; choose one of {', '.join(choices)}{hint}")


def stopping_mode(task: Task, metric: str, mode: str | None) -> str:
    return mode or ("min" if lower_is_better(task, metric) else "max")


def plan_training(config: Any, train_size: int, world_size: int) -> TrainingPlan:
    """Batches, steps and evaluations of the run, with a note for each setting that cannot act as written."""
    train = config.train
    batches = len(epoch_batches(train_size, train.batch_size, 0, 0, 0, world_size))
    if batches == 0:
        raise HomofitError(f"data.train: {train_size} training inputs are fewer than the {world_size} processes.")
    notes = []
    if not has_dev(config):
        notes.append("data.dev is not set: nothing is scored during training, there is no early stopping, and "
                     "checkpoints/best is the final model (with no evidence it is the best); set data.dev, or "
                     "data.dev_split: 0.1 to hold out a tenth of train, to choose the best step on held-out data")
    if train.grad_accum > batches:
        notes.append(f"train.grad_accum {train.grad_accum} is more than the {batches} batches of an epoch: each "
                     "optimizer step takes one whole epoch")
    steps_per_epoch = math.ceil(batches / train.grad_accum)
    total_steps = train.max_steps or math.ceil(train.epochs * steps_per_epoch)
    eval_every = steps_per_epoch if train.eval_every == "epoch" else train.eval_every
    if has_dev(config) and eval_every > total_steps:
        notes.append(f"train.eval_every {eval_every} is more than the run's {total_steps} steps: dev is scored at "
                     "the end only")
    if train.save_every is not None and train.save_every > total_steps:
        notes.append(f"train.save_every {train.save_every} is more than the run's {total_steps} steps: `last` is "
                     "written at the end only")
    return TrainingPlan(batches, steps_per_epoch, total_steps, eval_every, train.save_every, tuple(notes))


class _EarlyLog(logging.Handler):
    """What setup logs before the run directory exists (reading, tokenizing), for train.log once it does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def setup(config: Any, run_dir: Path | None, overrides: list[str], resume_run: Path | None = None,
          progress: Any = None) -> Experiment:
    """Read the data, build the task, tokenizer and model, and create the run directory (or reopen the run
    that `resume_run` names, after checking that its spec, data and labels are unchanged)."""
    early = _EarlyLog()
    log.addHandler(early)
    log.setLevel(logging.DEBUG)  # as train.log will, so the early records reach it; the console keeps its level
    try:
        return _setup(config, run_dir, overrides, resume_run, progress)
    finally:
        log.removeHandler(early)


def _setup(config: Any, run_dir: Path | None, overrides: list[str], resume_run: Path | None,
           progress: Any) -> Experiment:
    from homofit.model import (
        apply_lora,
        check_model_fits,
        count_parameters,
        freeze_parameters,
        load_tokenizer,
        trainable_modules,
    )
    from homofit.runtime import build_runtime, seed_everything

    if config.data.train is None:
        raise HomofitError("data.train: no training file given; set data.train in the spec or data.train=PATH.")
    if resume_run is None:
        if run_dir is not None:
            check_writable(run_dir, "--run-dir")
        else:
            check_writable(config.output.dir, "output.dir")
    if resume_run is not None and config.train.strategy == "fsdp":
        raise HomofitError(f"--resume {resume_run}: runs with train.strategy fsdp do not resume yet (their "
                           "checkpoints/last holds the gathered weights, not the sharded optimizer state); start a "
                           f"new run from those weights: model.name_or_path={RunDir(resume_run).checkpoint('last')}")
    resume = read_trainer_state(RunDir(resume_run).checkpoint("last")) if resume_run is not None else None
    # A resumed run takes its weights, tokenizer and labels from `last`; LoRA rebuilds the adapters on the
    # original backbone and restores them from the trainer state, since `last` holds merged weights.
    model_source = config.model.name_or_path
    if resume is not None and config.model.lora is None:
        model_source = str(RunDir(resume_run).checkpoint("last"))
    start_from_checkpoint = is_homofit_checkpoint(model_source)
    previous_state = checkpoint_task_state(model_source, config.task.type) if start_from_checkpoint else None
    previous_labels = (previous_state or {}).get("labels")
    task = build_task(config.task)
    check_training_spec(config, task)
    check_model_fits(config)
    data_notes: list[str] = []
    carved: dict[str, Any] = {}
    raw_splits = read_splits(task, config, notes=data_notes, carved=carved)
    tokenizer = load_tokenizer(model_source, config.model)
    new_labels = task.initialize(raw_splits["train"][1], tokenizer, previous_state)
    data_notes += unseen_label_notes(task, raw_splits)
    data_hashes = {name: file_sha256(path) for name, (path, _) in raw_splits.items()}
    run_fingerprint = fingerprint(config_to_dict(config), data_hashes, list(task.labels))
    if resume is not None:
        changes = fingerprint_changes(resume["fingerprint"], run_fingerprint)
        if changes:
            raise HomofitError(f"--resume {resume_run}: the spec or data changed since the run was saved, so it "
                               f"cannot continue it ({'; '.join(changes)}). Undo the change, or start a new run.")

    runtime = build_runtime(config.train.device, config.train.precision, config.train.dist_timeout_s)
    seed_everything(config.train.seed)
    model = task.build_model(model_source, config.model, tokenizer, from_checkpoint=start_from_checkpoint)
    freeze_parameters(model, config.model.freeze, config.model.freeze_layers)
    if config.model.lora is not None:
        model = apply_lora(model, config.model.lora, task.trainable_modules(model))
    model.to(runtime.device)
    if runtime.device.type == "cpu":
        from homofit.dropout import use_bulk_dropout

        use_bulk_dropout(model)  # the same dropout, its masks drawn in bulk (homofit.dropout)
    runtime.strategy = config.train.strategy
    if runtime.sharded_model:
        model = shard_model(model, runtime, config)  # before the optimizer is built over its parameters
    if runtime.world_size > 1:  # the same weights everywhere (DDP broadcasts them); dropout masks per process
        import torch

        torch.manual_seed(config.train.seed + 1_000_003 * runtime.rank)
    progress = progress if progress is not None else quiet_display()
    cache_keys = feature_cache_keys(config, task, tokenizer, data_hashes) if config.data.cache else {}
    splits = {name: Split(name, path, examples, encode_split(task, name, examples, tokenizer, config.data, progress,
                                                             cache_keys.get(name)))
              for name, (path, examples) in raw_splits.items()}
    plan = plan_training(config, len(splits["train"].features), runtime.world_size)
    # The run directory comes after everything a user can get wrong, so a failed start leaves none behind.
    run = None
    trainable, total = count_parameters(model)
    if trainable == 0:
        raise HomofitError(f"model.freeze: {config.model.freeze} leaves nothing to train in {type(model).__name__} "
                           "(its output layer is part of the frozen backbone or tied to it); use freeze: embeddings, "
                           "bottom, or model.lora.")
    if runtime.is_main:
        run = RunDir(resume_run) if resume_run is not None else create_run_dir(
            run_dir, config.output.dir, config.output.name or config.task.type)
    _attach_log_file(run)
    for note in [*data_notes, *plan.notes]:
        log.warning("%s", note)
    if new_labels and previous_labels and resume is None:
        log.warning("labels new to the checkpoint extend its head: %s", ", ".join(new_labels))
    log.info("%s: %s parameters, %s trainable; %d labels; %s", config.model.name_or_path, f"{total:,}",
             f"{trainable:,}", len(task.labels), runtime.describe())
    log.info("training: %s; optim.lr %g", trainable_modules(model), config.optim.lr)
    if trainable < 0.1 * total and config.optim.lr <= METHOD_LEARNING_RATES["full"] * 2:
        log.warning("only %.1f%% of the parameters train, but optim.lr %g is a full-fine-tuning rate; LoRA and "
                    "head-only runs usually need 5e-4 to 1e-2 (leave optim.lr out for the method's default)",
                    100 * trainable / total, config.optim.lr)
    if run is not None:
        run.config.write_text(dump_config(config), encoding="utf-8")
        if resume is None:
            meta = run_metadata(overrides, {name: split.path for name, split in splits.items()},
                                runtime.describe(), config.train.seed, data_hashes)
            if carved:  # which training examples (0-based, in file order) became dev
                meta["dev_split"] = {"fraction": config.data.dev_split, "seed": config.data.dev_split_seed, **carved}
        else:
            meta = json.loads(run.meta.read_text(encoding="utf-8"))
            meta.setdefault("resumes", []).append({"step": resume["step"], "overrides": overrides,
                                                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        run.meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    experiment = Experiment(config, task, tokenizer, model, runtime, run, splits, plan, run_fingerprint, resume,
                            progress=progress)
    experiment.resume_from = RunDir(resume_run).checkpoint("last") if resume_run is not None else None
    if run is not None and config.output.loggers:
        from homofit.trackers import open_trackers

        experiment.trackers = open_trackers(config, config_to_dict(config), run.root, run.root.name)
    experiment.set_status("running", task=config.task.type, model=config.model.name_or_path,
                          started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), step=resume["step"] if resume else 0,
                          total_steps=plan.total_steps,
                          metric=config.train.early_stopping.metric or task.headline_metric)
    return experiment


ENCODE_CHUNK = 5000  # examples encoded at a time, so a large file shows its progress


def feature_cache_keys(config: Any, task: Task, tokenizer: PreTrainedTokenizerBase,
                       data_hashes: dict[str, str]) -> dict[str, str]:
    """The feature cache's key of each split (homofit.features.cache_key)."""
    from homofit.features import cache_key, tokenizer_fingerprint

    spec = config_to_dict(config)
    tokenizer_hash = tokenizer_fingerprint(tokenizer)
    return {name: cache_key(data_hash=data_hash, split=name, tokenizer_hash=tokenizer_hash, task_section=spec["task"],
                            data_section=spec["data"], task_state=task.state())
            for name, data_hash in data_hashes.items()}


def encode_split(task: Task, name: str, examples: list[Any], tokenizer: PreTrainedTokenizerBase, data: Any,
                 progress: Any, cache_key: str | None = None) -> FeatureTable:
    """The features of one split as a FeatureTable, encoded in chunks under a progress bar (each feature's
    example_index counts from the start of the split, as if it had been encoded at once), or read from the
    feature cache when `cache_key` is there; a new table is stored under `cache_key`."""
    from homofit.features import TableBuilder, load_cached, store

    start = time.perf_counter()
    if cache_key is not None:
        cached = load_cached(cache_key)
        if cached is not None:
            for level, message in cached.notes:  # what encoding the whole split logged (cut answers, ...)
                log.log(level, "%s", message)
            log.info("tokenized %s: skipped, %s inputs of %s examples read from the feature cache in %.2f s",
                     name, f"{len(cached):,}", f"{len(examples):,}", time.perf_counter() - start)
            return cached
    builder = TableBuilder()
    with progress.phase(f"tokenize {name}", len(examples), f"{len(examples):,} examples") as bar, \
            _LogNotes() as notes:
        for offset in range(0, len(examples), ENCODE_CHUNK):
            chunk = task.encode(examples[offset : offset + ENCODE_CHUNK], tokenizer, data)
            for feature in chunk:
                feature["example_index"] += offset
            builder.add(chunk)
            bar.advance(min(ENCODE_CHUNK, len(examples) - offset))
    table = builder.finish()
    table.notes = notes.records
    if cache_key is not None:
        table = store(cache_key, table)
    log.info("tokenized %s: %s examples -> %s inputs in %.1f s", name, f"{len(examples):,}", f"{len(table):,}",
             time.perf_counter() - start)
    return table


class _LogNotes(logging.Filter):
    """While encoding: note what homofit logs, to replay it when the features come from the cache."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append((record.levelno, record.getMessage()))
        return True

    def __enter__(self) -> _LogNotes:  # noqa: PYI034 - Self needs Python 3.11
        log.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        log.removeFilter(self)


def feature_lengths(features: Any) -> list[int]:
    """The input length of every feature (from a FeatureTable's offsets, without building the dicts)."""
    if hasattr(features, "lengths"):
        return features.lengths("input_ids").tolist()
    return [len(feature["input_ids"]) for feature in features]


def quiet_display() -> Any:
    """A display that draws nothing (a run started from Python without one)."""
    from rich.console import Console

    from homofit.reporting import PhaseDisplay

    return PhaseDisplay(Console(quiet=True))


@contextlib.contextmanager
def _phase(experiment: Experiment, name: str, total: int | None, info: str = "", completed: int = 0) -> Iterator[Any]:
    """A bar on the main process; elsewhere a bar that counts nothing."""
    if experiment.runtime.is_main:
        with experiment.progress.phase(name, total, info, completed) as bar:
            yield bar
    else:
        yield _NoBar()


class _NoBar:
    def advance(self, amount: int = 1) -> None:
        pass

    def update(self, info: str) -> None:
        pass


def _attach_log_file(run: RunDir | None) -> None:
    if run is None:
        return
    log.setLevel(logging.DEBUG)  # train.log keeps every step, whoever set up the console (CLI, tests, a notebook)
    handler = logging.FileHandler(run.log, encoding="utf-8")  # appends, so a resumed run continues the log
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    for early in [other for other in log.handlers if isinstance(other, _EarlyLog)]:
        for record in early.records:
            handler.handle(record)
        early.records.clear()
        log.removeHandler(early)


# -- evaluation -------------------------------------------------------------------------------------------


@dataclass
class SplitPredictions:
    """What one pass over a split gives: a prediction per example and, when the split has labels, the mean of
    the training loss over all of its units (None on the processes that do not decode)."""

    predictions: list[Any] | None
    loss: float | None = None


def predict_split(model: PreTrainedModel, task: Task, tokenizer: PreTrainedTokenizerBase, split: Split,
                  batch_size: int, runtime: Runtime, progress: Any = None,
                  pad_to: tuple[int, int] | None = None) -> SplitPredictions:
    """Predictions for every example of a split, in batches sorted by length (less padding), with the loss
    from the same forward passes; `progress` (a `reporting.PhaseDisplay`) shows the batches done.

    Under several processes the batches are dealt out to them (the same batches one process would make, so
    every number is the same) and gathered on the first process, which decodes; the others get None.
    `pad_to` (multiple, max_length) pads each batch as training does (pad_batch).
    """
    import torch

    batches = eval_batches(feature_lengths(split.features), batch_size)
    if not runtime.sharded_model:  # under FSDP every process runs every batch together, as its forward needs
        batches = batches[runtime.rank :: runtime.world_size]
    mine: list[tuple[int, Any]] = []
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    units = torch.zeros((), dtype=torch.float64, device=runtime.device)
    was_training = model.training
    model.eval()
    # FSDP's gathered parameters outlive the pass; made under inference_mode they could not train afterwards
    no_grad = torch.no_grad() if runtime.sharded_model else torch.inference_mode()
    phase = progress.phase(f"eval {split.name}", len(batches), f"{len(split.examples):,} examples") \
        if progress is not None and runtime.is_main else contextlib.nullcontext(None)
    with no_grad, runtime.autocast(), phase as bar:
        for indices in batches:
            batch = task.collate([split.features[index] for index in indices], tokenizer)
            if pad_to is not None:
                batch = pad_batch(batch, *pad_to, tokenizer.pad_token_id)
            batch = {key: value.to(runtime.device) for key, value in batch.items()}
            rows, loss = task.evaluate_batch(model, batch)
            mine.extend(zip(indices, rows))
            if loss is not None:
                loss_sum += loss[0].double()
                units += loss[1].double()
            if bar is not None:
                bar.advance()
    model.train(was_training)
    if runtime.sharded_model:
        if not runtime.is_main:
            return SplitPredictions(None)
    elif runtime.world_size > 1:
        gathered: list[Any] = [None] * runtime.world_size if runtime.is_main else None
        torch.distributed.gather_object(mine, gathered, dst=0)
        totals = torch.stack([loss_sum, units])
        torch.distributed.reduce(totals, dst=0)
        loss_sum, units = totals[0], totals[1]
        if not runtime.is_main:
            return SplitPredictions(None)
        mine = [pair for part in gathered for pair in part]
    outputs: list[Any] = [None] * len(split.features)
    for index, output in mine:
        outputs[index] = output
    mean_loss = float(loss_sum / units) if float(units) > 0 else None
    return SplitPredictions(task.decode(split.examples, split.features, outputs), mean_loss)


def eval_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Feature indices in batches sorted by length, each of at most `batch_size` rows and at most `batch_size`
    x the median length in padded tokens: the longest inputs come in smaller batches, so no batch is mostly
    padding and none is much larger than a typical one."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    budget = batch_size * max(lengths[order[len(order) // 2]], 1) if order else 0
    batches: list[list[int]] = []
    for index in order:  # each new index is the longest of its batch so far: rows x its length is the padded size
        if not batches or len(batches[-1]) == batch_size or (len(batches[-1]) + 1) * lengths[index] > budget:
            batches.append([])
        batches[-1].append(index)
    return batches


def evaluate(experiment: Experiment, split: Split, model: PreTrainedModel | None = None,
             sharded: bool = True) -> tuple[dict, list]:
    """The report and predictions on `split`; every process must call it, unless `sharded` is False (the
    first process alone, e.g. after the others have finished)."""
    import dataclasses

    config = experiment.config
    batch_size = config.train.eval_batch_size or config.train.batch_size
    runtime = experiment.runtime if sharded else dataclasses.replace(experiment.runtime, rank=0, world_size=1)
    with _out_of_memory_advice(config, split.name):
        multiple = pad_multiple(config)
        result = predict_split(model or experiment.model, experiment.task, experiment.tokenizer, split, batch_size,
                               runtime, experiment.progress,
                               pad_to=(multiple, config.data.max_length) if multiple else None)
    if result.predictions is None:  # another process of a distributed run: the first one scores
        return {}, []
    predictions = result.predictions
    report = experiment.task.score(split.examples, predictions)
    if result.loss is not None:
        report = {"loss": result.loss, **report}  # the training loss on this split, selectable for early stopping
    unseen = unseen_labels(experiment.task, split.examples)
    if unseen:
        report["unseen_labels"] = unseen  # gold labels the model cannot predict: each is scored as an error
    return report, predictions


def gold_labels(example: Any) -> list[str]:
    """The gold labels an example carries: NER tags, classification labels or a relation label."""
    for name in ("tags", "labels", "label"):
        value = getattr(example, name, None)
        if value is not None:
            return [value] if isinstance(value, str) else [str(item) for item in value]
    return []


def unseen_labels(task: Task, examples: list[Any]) -> dict[str, int]:
    """How often each gold label the training data never had occurs in `examples`."""
    known = set(task.labels)
    if not known:
        return {}
    counts = Counter(label for example in examples for label in gold_labels(example) if label not in known)
    return dict(sorted(counts.items()))


def unseen_label_notes(task: Task, splits: dict[str, tuple[Path, list]]) -> list[str]:
    notes = []
    for name in ("dev", "test"):
        if name in splits:
            unseen = unseen_labels(task, splits[name][1])
            if unseen:
                shown = ", ".join(f"{label} ({count})" for label, count in unseen.items())
                notes.append(f"data.{name}: labels never seen in training: {shown}; the model cannot predict them, "
                             "so each counts as an error (reports list them under unseen_labels)")
    return notes


def write_report(run: RunDir, name: str, task: Task, report: dict[str, Any], per_class_chart: bool = True) -> None:
    run.report(name, "json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    run.report(name, "txt").write_text(task.format_report(report), encoding="utf-8")
    write_report_figures(task, report, run.reports, name, per_class_chart)


def write_report_figures(task: Task, report: dict[str, Any], folder: Path, name: str,
                         per_class_chart: bool = True) -> None:
    """The per-class chart of a report that has classes, and figures a task draws from its report (e.g. a
    confusion matrix PNG), when it draws any."""
    from homofit.figures import save_per_class_chart

    if per_class_chart:
        save_per_class_chart(report, folder / f"{name}.per_class.png", f"{name}: F1 per class")
    task.write_report_figures(report, folder, name)


def write_predictions(path: Path, task: Task, examples: list, predictions: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in task.prediction_records(examples, predictions):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- training ---------------------------------------------------------------------------------------------


MEGA_BATCH = 50  # by_length: batches per shuffled group that is sorted by length


def epoch_batches(size: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                  lengths: list[int] | None = None, accumulation: int = 1) -> list[list[int]]:
    """The micro-batches (feature indices) of one epoch for one process: a shuffle seeded by (seed, epoch),
    so any position of any epoch is found again without replaying the ones before it.

    With `lengths` (train.batching: by_length) the shuffled order is cut into groups of 50 optimizer-step
    batches (batch_size x processes x accumulation examples each), each group sorted by length and cut into
    step batches, and those shuffled again (a short last one stays last): batches of like lengths (little
    padding) in a random order, reproducible under the seed. A step batch is then cut into its micro-batches,
    so batch 4 x accumulation 4 sees the examples batch 16 sees, as with random batches. Under N processes each
    micro-batch of N x batch_size is dealt out in slices; a last one too small to give every process a row is
    left out.
    """
    import torch

    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(size, generator=generator).tolist()
    width = batch_size * world_size
    if lengths is not None:
        step = width * accumulation
        group = step * MEGA_BATCH
        order = [index for start in range(0, size, group)
                 for index in sorted(order[start : start + group], key=lambda position: -lengths[position])]
        steps = [order[start : start + step] for start in range(0, size, step)]
        whole = len(steps) - (len(steps[-1]) < step if steps else 0)  # a short last step batch stays last
        order = [index for position in [*torch.randperm(whole, generator=generator).tolist(), *range(whole, len(steps))]
                 for index in steps[position]]
    batches = [order[start : start + width] for start in range(0, size, width)]
    if world_size == 1:
        return batches
    return [batch[rank * len(batch) // world_size : (rank + 1) * len(batch) // world_size]
            for batch in batches if len(batch) >= world_size]


def pad_multiple(config: Any) -> int | None:
    """train.pad_to_multiple_of, 32 by default under train.compile (a few shapes, a few graphs)."""
    return config.train.pad_to_multiple_of or (32 if config.train.compile else None)


SEQUENCE_KEYS = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0, "labels": IGNORE_INDEX}


def pad_batch(batch: dict[str, torch.Tensor], multiple: int, max_length: int,
              pad_id: int | None) -> dict[str, torch.Tensor]:
    """Right-pad a collated batch's token-level tensors (input ids, attention mask, token types, and labels of
    the same shape) to the next multiple of `multiple` tokens, at most max(max_length, width): masked
    positions that change no real position's output, and a handful of shapes instead of one per width."""
    import torch

    width = batch["input_ids"].shape[1]
    target = min(-(-width // multiple) * multiple, max(max_length, width))
    if target == width:
        return batch
    padded = dict(batch)
    for key, value in SEQUENCE_KEYS.items():
        tensor = batch.get(key)
        if (tensor is None or tensor.dim() != 2 or tensor.shape != batch["input_ids"].shape
                or tensor.is_floating_point()):
            continue
        fill = (pad_id or 0) if key == "input_ids" else value
        extra = torch.full((tensor.shape[0], target - width), fill, dtype=tensor.dtype)
        padded[key] = torch.cat([tensor, extra], dim=1)
    return padded


def new_train_state(experiment: Experiment) -> TrainState:
    """Optimizer, schedule and counters for step 0; a resumed run then loads its saved state into them."""
    import torch

    from homofit.optim import build_optimizer, build_scheduler

    config, model = experiment.config, experiment.model
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, experiment.plan.total_steps)
    scaler = torch.amp.GradScaler(enabled=experiment.runtime.dtype == torch.float16)
    stopping = config.train.early_stopping
    metric = stopping.metric or experiment.task.headline_metric
    tracker = BestTracker(metric, stopping_mode(experiment.task, metric, stopping.mode), stopping.patience)
    window = LogWindow(torch.zeros((), device=experiment.runtime.device))
    state = TrainState(model, optimizer, scheduler, scaler, tracker, window, fingerprint=experiment.fingerprint)
    if experiment.resume is not None:
        restore_trainer_state(experiment.resume_from, state, experiment.resume,
                              lora=config.model.lora is not None)
    return state


def fit(experiment: Experiment, state: TrainState) -> FitResult:
    """Train with periodic evaluation on dev, keeping the best checkpoint and stopping early on a plateau.

    Every decision is taken at an optimizer-step boundary, where `state` is complete: that is where a
    checkpoint is saved, a signal is answered, and a resumed run picks up.
    """
    config, runtime, plan = experiment.config, experiment.runtime, experiment.plan
    log.info("training %d steps from step %d (%d per epoch, batch %d x %d accumulation x %d processes = %d)",
             plan.total_steps, state.step, plan.steps_per_epoch, config.train.batch_size, config.train.grad_accum,
             runtime.world_size, config.train.batch_size * config.train.grad_accum * runtime.world_size)
    has_dev = "dev" in experiment.splits
    if config.train.compile:
        if not hasattr(state.model, "compile"):
            import torch

            raise HomofitError(f"train.compile needs torch 2.2 or newer (this is {torch.__version__}); upgrade "
                               "torch or set train.compile: false.")
        state.model.compile(dynamic=False)  # in place: the state dict keeps its names, checkpoints stay plain
    if state.step == 0 and has_dev and config.train.eval_before_training:
        _evaluate_and_keep(experiment, state)

    guard = _NonFiniteGuard(experiment)
    meter = _Throughput()
    train_model = _wrap_distributed(state.model, runtime)
    stopped_early = state.tracker.should_stop
    compiling = config.train.compile
    with stop_on_signals() as stop, _out_of_memory_advice(config), \
            _phase(experiment, "train", plan.total_steps, "loss -", state.step) as bar:
        while state.step < plan.total_steps and not stopped_early:
            for step_loss in train_epoch(experiment, state, train_model):
                if compiling:
                    compiling = False
                    log.info("train.compile: the first step took %.1f s (compiling; a new padded shape compiles "
                             "again)", time.perf_counter() - meter.since)
                guard.record(step_loss, state.step)
                state.window.loss += step_loss
                state.window.steps += 1
                meter.steps += 1
                bar.advance()
                at_end = state.step == plan.total_steps
                if state.step % config.train.log_every == 0 or at_end:
                    _log_training(experiment, state, meter, bar)
                    guard.check()
                if has_dev and (state.step % plan.eval_every == 0 or at_end):
                    guard.check()
                    _evaluate_and_keep(experiment, state)
                    stopped_early = state.tracker.should_stop and not at_end  # the last step is no early stop
                if plan.save_every and state.step % plan.save_every == 0 and not at_end:
                    guard.check()
                    save_resumable(experiment, state)
                if stop.requested(runtime):
                    guard.check()
                    save_resumable(experiment, state)
                    raise TrainingInterrupted(
                        f"stopped by {stop.signal_name} at step {state.step}; a resumable checkpoint is in "
                        f"{experiment.run.checkpoint('last') if experiment.run else 'checkpoints/last'}. "
                        f"Continue with: homofit train --resume {experiment.run.root if experiment.run else 'RUN'}")
                if at_end or stopped_early:
                    break
    guard.check()
    if stopped_early:
        log.info("early stopping at step %d: no gain in %s for %d evaluations", state.step, state.tracker.metric,
                 state.tracker.patience)
    state.finished = True
    if not has_dev:
        _save_best(experiment)
    if config.output.save_last:
        save_resumable(experiment, state)
    elif runtime.is_main and experiment.run.checkpoint("last").exists():
        shutil.rmtree(experiment.run.checkpoint("last"))  # written by save_every; not wanted at the end
    tracker = state.tracker
    return FitResult(state.step, tracker.best_step, tracker.best, stopped_early, tracker.metric, tracker.mode,
                     tracker.patience)


def train_epoch(experiment: Experiment, state: TrainState, train_model: Any) -> Iterator[torch.Tensor]:
    """The rest of the current epoch, one optimizer step at a time; yields each step's mean loss (on the device)
    with `state` already counting the step.

    Gradients are summed over the micro-batches of an accumulation window and divided once by the number of
    loss units (tokens, words, examples) in the window, so batch 4 x 4 computes what batch 16 does. A resumed
    epoch starts at `state.batch_in_epoch`: the batches before it are never collated.
    """
    import torch

    config, runtime, task = experiment.config, experiment.runtime, experiment.task
    features = experiment.splits["train"].features
    state.model.train()
    lengths = feature_lengths(features) if config.train.batching == "by_length" else None
    batches = epoch_batches(len(features), config.train.batch_size, config.train.seed, state.epoch, runtime.rank,
                            runtime.world_size, lengths, config.train.grad_accum)
    loss_sum = torch.zeros((), device=runtime.device)
    units = torch.zeros((), device=runtime.device)
    multiple = pad_multiple(config)
    one_batch_windows = config.train.grad_accum == 1 and runtime.world_size == 1
    for index in range(state.batch_in_epoch, len(batches)):
        batch = task.collate([features[i] for i in batches[index]], experiment.tokenizer)
        if multiple:
            batch = pad_batch(batch, multiple, config.data.max_length, experiment.tokenizer.pad_token_id)
        batch = {key: value.to(runtime.device, non_blocking=True) for key, value in batch.items()}
        steps_now = (index + 1) % config.train.grad_accum == 0 or index + 1 == len(batches)
        with _gradient_sync(train_model, steps_now), runtime.autocast():
            batch_loss, batch_units = task.loss(train_model, batch)
        # A window of one micro-batch on one process knows its units now: the mean is taken before backward,
        # which saves a pass over every gradient; otherwise the gradients are divided once per window.
        state.scaler.scale(batch_loss / batch_units.clamp(min=1) if one_batch_windows else batch_loss).backward()
        loss_sum += batch_loss.detach()
        units += batch_units
        if not steps_now:
            continue
        step_loss = optimizer_step(state, loss_sum, units, config, runtime, divided=one_batch_windows)
        loss_sum.zero_()
        units.zero_()
        state.step += 1
        state.batch_in_epoch = index + 1
        if state.batch_in_epoch == len(batches):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        yield step_loss


@dataclass
class _Throughput:
    """Steps since the last log line and when that line was written (wall time stays out of the state)."""

    steps: int = 0
    since: float = field(default_factory=time.perf_counter)


def _log_training(experiment: Experiment, state: TrainState, meter: _Throughput, bar: Any) -> None:
    mean_loss = state.window.loss.item() / state.window.steps  # the one host sync per log window
    rate = meter.steps / (time.perf_counter() - meter.since)
    _log_event(experiment, {"event": "train", "step": state.step,
                                "epoch": round(state.step / experiment.plan.steps_per_epoch, 3), "loss": mean_loss,
                                "lr": state.scheduler.get_last_lr()[0], "steps_per_s": rate})
    bar.update(f"loss {mean_loss:.4f}  {rate:.2f} steps/s")
    experiment.set_status("running", step=state.step, loss=mean_loss)
    if not experiment.progress.is_terminal and experiment.runtime.is_main:
        # piped, under nohup or in CI there is no bar: a plain line per log window instead
        left = (experiment.plan.total_steps - state.step) / rate if rate > 0 else 0.0
        log.info("step %d/%d  loss %.4f  lr %.3g  %.2f steps/s  ETA %s", state.step, experiment.plan.total_steps,
                 mean_loss, state.scheduler.get_last_lr()[0], rate, time.strftime("%H:%M:%S", time.gmtime(left)))
    state.window.loss.zero_()
    state.window.steps = 0
    meter.steps, meter.since = 0, time.perf_counter()


class _NonFiniteGuard:
    """Notes the first step whose loss is not finite without a host sync (a device-side `where`), and stops the
    run at the next check, which comes before every evaluation and save: no NaN model is ever kept."""

    def __init__(self, experiment: Experiment) -> None:
        import torch

        self.experiment = experiment
        self.active = experiment.config.train.nan_policy == "stop"
        self.first_bad_step = torch.full((), -1, device=experiment.runtime.device)

    def record(self, step_loss: torch.Tensor, step: int) -> None:
        import torch

        if self.active:
            self.first_bad_step = torch.where((self.first_bad_step < 0) & ~torch.isfinite(step_loss), step,
                                              self.first_bad_step)

    def check(self) -> None:
        if not self.active:
            return
        bad_step = int(self.first_bad_step)
        if bad_step < 0:
            return
        run = self.experiment.run
        last = run.checkpoint("last") if run is not None else None
        good = f"the last good checkpoint is {last}" if last is not None and last.exists() else \
            "no resumable checkpoint was saved before it (set train.save_every)"
        raise NonFiniteLoss(f"the training loss became non-finite at step {bad_step}; {good}. Lower optim.lr, keep "
                            "train.max_grad_norm set, use precision bf16 or fp32 rather than fp16, or skip such "
                            "steps with train.nan_policy: skip.")


def clip_gradients(model: PreTrainedModel, max_norm: float, skip_unit_scale: bool = False) -> None:
    """`torch.nn.utils.clip_grad_norm_`; with `skip_unit_scale` (one process on the CPU, where reading the norm
    is no device sync) a step whose norm is within `max_norm` skips the multiplication by exactly 1.0 that
    clip_grad_norm_ does to avoid that sync: the same gradients, bit for bit, without a pass over all of them
    (most steps of a fine-tuning run, e.g. 79% of the quickstart's)."""
    import torch

    if not skip_unit_scale or not hasattr(torch.nn.utils, "get_total_norm"):  # get_total_norm: torch >= 2.6
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return
    gradients = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    if not gradients:
        return
    coefficient = torch.clamp(max_norm / (torch.nn.utils.get_total_norm(gradients) + 1e-6), max=1.0)
    if float(coefficient) != 1.0:  # as clip_grad_norm_ computes it; a non-finite norm scales too, as there
        torch._foreach_mul_(gradients, coefficient)


def optimizer_step(state: TrainState, loss_sum: torch.Tensor, units: torch.Tensor, config: Any,
                   runtime: Runtime, divided: bool = False) -> torch.Tensor:
    """One optimizer step over an accumulation window's summed gradients (`divided`: already divided by the
    window's units); returns the window's mean loss.

    Under several processes the unit count is summed over all of them, and DDP's mean over processes is
    undone, so the step is the one a single process would take over the global batch.
    """
    import torch

    if runtime.world_size > 1:
        totals = torch.stack([loss_sum, units])
        torch.distributed.all_reduce(totals)
        loss_sum, units = totals[0], totals[1]
    units = units.clamp(min=1)
    state.scaler.unscale_(state.optimizer)
    if not divided:
        gradients = [parameter.grad for parameter in state.model.parameters() if parameter.grad is not None]
        torch._foreach_mul_(gradients, runtime.world_size / units)
    if config.train.max_grad_norm is not None:
        clip_gradients(state.model, config.train.max_grad_norm, skip_unit_scale=runtime.device.type == "cpu"
                       and runtime.world_size == 1)
    mean_loss = loss_sum / units
    if config.train.nan_policy == "skip" and not bool(torch.isfinite(mean_loss)):  # a sync, only with skip
        log.warning("step %d: non-finite loss; the update is skipped (train.nan_policy: skip)", state.step + 1)
        state.optimizer.zero_grad(set_to_none=True)
        state.scheduler.step()
        return torch.zeros_like(mean_loss)  # the skipped step adds nothing to the logged loss
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return mean_loss


def save_resumable(experiment: Experiment, state: TrainState) -> None:
    """Write `last` with everything a resume needs; every process calls it, the main process writes. Under
    FSDP `last` holds the gathered weights but no trainer state (such runs do not resume yet)."""
    weights = full_weights(experiment)
    if experiment.run is None:
        return
    state.metrics_offset = experiment.run.metrics.stat().st_size if experiment.run.metrics.exists() else 0
    lora = experiment.config.model.lora is not None
    start = time.perf_counter()
    more = None if weights is not None else (lambda folder: write_trainer_state(folder, state, lora))
    with _phase(experiment, "save checkpoints/last", None):
        save_checkpoint(experiment.run.checkpoint("last"), state.model, experiment.tokenizer, experiment.task,
                        checkpoint_spec(experiment.config), extra={"step": state.step}, write_more=more,
                        state_dict=weights)
    log.debug("saved checkpoints/last at step %d in %.2f s", state.step, time.perf_counter() - start)


def checkpoint_spec(config: Any) -> dict[str, Any]:
    """The spec a checkpoint keeps: data paths made absolute, so `homofit eval --split` works from any folder."""
    spec = config_to_dict(config)
    for name in ("train", "dev", "test"):
        if spec["data"].get(name):
            spec["data"][name] = str(Path(spec["data"][name]).absolute())
    return spec


def _save_best(experiment: Experiment, step: int | None = None) -> None:
    """Every process calls it (FSDP gathers the weights); the main process writes."""
    weights = full_weights(experiment)
    if experiment.run is None:
        return
    with _phase(experiment, "save checkpoints/best", None):
        save_checkpoint(experiment.run.checkpoint("best"), experiment.model, experiment.tokenizer, experiment.task,
                        checkpoint_spec(experiment.config), extra={"step": step} if step is not None else None,
                        state_dict=weights)


def shard_model(model: PreTrainedModel, runtime: Runtime, config: Any) -> PreTrainedModel:
    """FSDP (fully_shard, FULL_SHARD): each transformer layer, then the rest, sharded over the processes, in
    place; with bf16, parameters are gathered in bf16 and gradients reduced in fp32."""
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from homofit.model import _layer_stack

    if config.model.lora is not None:
        raise HomofitError("train.strategy: fsdp with model.lora is not supported; LoRA's few trainable parameters "
                           "fit every device, so use strategy: ddp.")
    if config.train.precision == "fp16":
        raise HomofitError("train.strategy: fsdp with precision fp16 is not supported; use bf16 or fp32.")
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if runtime.dtype == torch.bfloat16 else MixedPrecisionPolicy()
    for layer in _layer_stack(model):
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def full_weights(experiment: Experiment) -> dict[str, Any] | None:
    """Under FSDP, the whole state dict gathered on the first process (every process must call this); None
    otherwise, when the model's own weights are whole."""
    if not experiment.runtime.sharded_model:
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(experiment.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _wrap_distributed(model: PreTrainedModel, runtime: Runtime) -> Any:
    if runtime.world_size == 1 or runtime.sharded_model:
        return model
    import torch

    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    # Backbones often hold weights a task never uses (the pooler of an encoder read token by token, of a
    # BERT2BERT encoder, of the entity-start relation head); DDP must be told to expect them.
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


def _gradient_sync(train_model: Any, steps_now: bool) -> contextlib.AbstractContextManager:
    """DDP all-reduces (FSDP reduce-scatters) gradients only on the micro-batch that ends an accumulation window."""
    if hasattr(train_model, "set_requires_gradient_sync"):  # FSDP
        train_model.set_requires_gradient_sync(steps_now)
        return contextlib.nullcontext()
    if steps_now or not hasattr(train_model, "no_sync"):
        return contextlib.nullcontext()
    return train_model.no_sync()


class _SignalStop:
    """SIGTERM / SIGINT ask the loop to stop at the next step boundary; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def handle(self, number: int, frame: Any) -> None:
        if self.signal_name is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(number).name
        log.warning("%s received: saving a resumable checkpoint at the end of this step (Ctrl-C again to quit "
                    "at once)", self.signal_name)

    def requested(self, runtime: Runtime) -> bool:
        if runtime.world_size == 1:
            return self.signal_name is not None
        import torch

        flag = torch.tensor([self.signal_name is not None], dtype=torch.int32, device=runtime.device)
        torch.distributed.all_reduce(flag)  # every process stops at the same step
        if flag.item() and self.signal_name is None:
            self.signal_name = "a signal to another process"
        return bool(flag.item())


@contextlib.contextmanager
def stop_on_signals() -> Any:
    stop = _SignalStop()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop
        return
    previous = {number: signal.signal(number, stop.handle) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _out_of_memory_advice(config: Any, scoring: str | None = None) -> Any:
    """A GPU out-of-memory error says what to change instead of printing a traceback (`scoring`: the split
    being evaluated, whose batches are train.eval_batch_size)."""
    import torch

    out_of_memory = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    try:
        yield
    except out_of_memory:
        train = config.train
        if scoring is not None:
            raise HomofitError(
                f"the GPU ran out of memory scoring {scoring} at train.eval_batch_size "
                f"{train.eval_batch_size or train.batch_size} with inputs of up to data.max_length "
                f"{config.data.max_length} tokens; lower train.eval_batch_size (it defaults to train.batch_size), or "
                "use train.precision bf16.") from None
        raise HomofitError(
            f"the GPU ran out of memory at train.batch_size {train.batch_size} with inputs of up to "
            f"data.max_length {config.data.max_length} tokens; lower train.batch_size (and raise train.grad_accum "
            "to keep the effective batch), lower data.max_length, or use train.precision bf16.") from None


def _evaluate_and_keep(experiment: Experiment, state: TrainState) -> None:
    """Score dev (sharded over the processes), report on the main process, and keep the checkpoint when it is
    the best so far; the main process decides, every process takes part in the save (FSDP gathers weights)."""
    runtime, tracker, step = experiment.runtime, state.tracker, state.step
    started = time.perf_counter()
    report, predictions = evaluate(experiment, experiment.splits["dev"])
    seconds = time.perf_counter() - started
    improved = False
    if runtime.is_main:
        # the charts of each evaluation would add up; the final dev and test reports get them
        write_report(experiment.run, f"dev-step{step}", experiment.task, report, per_class_chart=False)
        _log_event(experiment, {"event": "eval", "split": "dev", "step": step, **experiment.task.headline(report)})
        if step == 0:  # the model before fine-tuning is reported, never kept as the best checkpoint
            write_predictions(experiment.run.prediction_file("dev-before"), experiment.task,
                              experiment.splits["dev"].examples, predictions)  # for `homofit compare --before`
            log.info("before fine-tuning: dev %s %.4f (scored in %.1f s; train.eval_before_training: false skips it)",
                     tracker.metric, report[tracker.metric], seconds)
        else:
            improved = tracker.update(report, step)
    if runtime.world_size > 1:
        import torch

        flags = torch.tensor([tracker.bad_evals, tracker.best_step or 0, int(improved)], device=runtime.device)
        torch.distributed.broadcast(flags, src=0)
        tracker.bad_evals, improved = int(flags[0]), bool(flags[2])
    if improved:
        _save_best(experiment, step)
    if runtime.is_main and step > 0:
        experiment.set_status("running", best_step=tracker.best_step, best=tracker.best)
        if improved:
            experiment.best_dev = (report, predictions)
        log.info("step %d: dev %s %.4f (best %.4f at step %d; scored in %.1f s)", step, tracker.metric,
                 report[tracker.metric], tracker.best, tracker.best_step, seconds)
        if experiment.on_eval is not None:
            experiment.on_eval(step, report)


def _log_event(experiment: Experiment, event: dict[str, Any]) -> None:
    """One event to metrics.jsonl and to every tracker of output.loggers (main process)."""
    run = experiment.run
    if run is None:
        return
    _track(experiment, event)
    # metrics.jsonl stays valid JSON: a non-finite number is written as null
    event = {"time": round(time.time(), 3),
             **{key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in event.items()}}
    run.append_metrics(event)
    if event["event"] == "train":
        log.debug("step %d  loss %s  lr %.3g  %.2f steps/s", event["step"], event["loss"], event["lr"],
                  event["steps_per_s"])
    elif event["event"] == "eval":
        log.debug("eval %s step %d  %s", event["split"], event["step"],
                  "  ".join(f"{key} {value:.4f}" for key, value in event.items()
                            if isinstance(value, float) and key != "time"))


def _track(experiment: Experiment, event: dict[str, Any]) -> None:
    """Trackers get train/loss, train/lr, train/steps_per_s, and <split>/<metric> for every evaluation during
    training; the scores of the best checkpoint (step -1 in metrics.jsonl) go in as final/<split>/<metric> when
    the run closes."""
    if not experiment.trackers or event["event"] not in {"train", "eval"} or event["step"] < 0:
        return
    if event["event"] == "train":
        metrics = {f"train/{key}": event[key] for key in ("loss", "lr", "steps_per_s")}
    else:
        metrics = {f"{event['split']}/{key}": value for key, value in event.items()
                   if isinstance(value, float) and key != "time"}
    step = event["step"]
    finite = {key: value for key, value in metrics.items() if isinstance(value, float) and math.isfinite(value)}
    for tracker in experiment.trackers:
        tracker.log_metrics(finite, step)


def close_trackers(experiment: Experiment, status: str, scores: dict[str, dict[str, Any]] | None = None) -> None:
    final = {f"final/{split}/{key}": value for split, report in (scores or {}).items() if split in {"dev", "test"}
             for key, value in experiment.task.headline(report).items() if math.isfinite(value)}
    trackers, experiment.trackers = experiment.trackers, []
    for tracker in trackers:
        tracker.close(final, status)


# -- the whole recipe -------------------------------------------------------------------------------------


@dataclass
class TrainSummary:
    run: RunDir
    fit: FitResult
    scores: dict[str, dict[str, Any]]
    headline_metrics: tuple[str, ...]  # the task's, in the order the console shows them


def train(config: Any, run_dir: Path | None, overrides: list[str], progress: Any,
          resume_run: Path | None = None, on_eval: Any = None) -> TrainSummary | None:
    """setup -> fit -> score dev and test with the best checkpoint. Returns None on non-main processes.

    With `resume_run`, the run continues from its `checkpoints/last` exactly where it was saved. `on_eval`
    sees each dev report (step, report) as it is made; an exception it raises ends the run there.
    """
    experiment = setup(config, run_dir, overrides, resume_run, progress)
    experiment.on_eval = on_eval
    with _collectives_named(experiment.runtime, config.train.dist_timeout_s):
        return _train(experiment)


@contextlib.contextmanager
def _collectives_named(runtime: Runtime, timeout_s: int) -> Iterator[None]:
    """Under torchrun, a failed or timed-out collective (another process died or stopped) becomes one message
    naming this process, instead of a traceback per process."""
    try:
        yield
    except RuntimeError as error:
        text = str(error)
        markers = ("timed out", "Timed out", "Connection closed", "Connection reset", "Broken pipe", "NCCL", "Gloo")
        if runtime.world_size == 1 or not (type(error).__name__ == "DistBackendError"
                                           or any(m in text for m in markers)):
            raise
        first_line = text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
        raise DistributedFailure(f"process {runtime.rank} of {runtime.world_size}: a collective operation failed "
                                 f"({first_line}); another process stopped, died or was killed (its own log says "
                                 f"why). train.dist_timeout_s is {timeout_s}; resume with --resume when the run "
                                 "saved a checkpoints/last.") from None


def _train(experiment: Experiment) -> TrainSummary | None:
    try:
        state = new_train_state(experiment)
        if experiment.resume is None:
            before = score_before_training(experiment)
        else:
            before = _scores_before_training_of(experiment.run)
            _continue_metrics(experiment, state)
        result = fit(experiment, state)
        if not experiment.runtime.is_main:
            return None
        scores = {**before, **test_best(experiment)}
        from homofit.figures import save_learning_curves

        save_learning_curves(experiment.run.metrics, result.metric, result.best_step,
                             experiment.run.report("learning_curves", "png"))
        test = scores.get("test", {})
        experiment.set_status("finished", step=result.steps, best_step=result.best_step, best=result.best_score,
                              test=test.get(experiment.task.headline_metric), ended=_end_reason(result),
                              finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        close_trackers(experiment, "finished", scores)
    except TrainingInterrupted as error:
        experiment.set_status("interrupted", error=str(error), finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        close_trackers(experiment, "interrupted")
        raise
    except BaseException as error:  # recorded, then raised as it was (a user error, Ctrl-C or a bug)
        experiment.set_status("failed", error=str(error) or type(error).__name__,
                              finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        close_trackers(experiment, "failed")
        raise
    finally:
        _close_log(experiment.runtime)
    return TrainSummary(experiment.run, result, scores, experiment.task.headline_metrics)


def _end_reason(result: FitResult) -> str:
    if result.stopped_early:
        return f"stopped early: no gain in dev {result.metric} for {result.patience} evaluations"
    return "trained every step"


def _continue_metrics(experiment: Experiment, state: TrainState) -> None:
    """Drop the events logged after the checkpoint being resumed (they are trained again), then note the resume."""
    run = experiment.run
    if run is None:
        return
    with run.metrics.open("r+b") as handle:
        handle.seek(state.metrics_offset)
        dropped = handle.read().count(b"\n")
        handle.truncate(state.metrics_offset)
    log.info("resuming at step %d (epoch %d, batch %d of it); %d events logged after that step are trained again",
             state.step, state.epoch, state.batch_in_epoch, dropped)
    _log_event(experiment, {"event": "resume", "step": state.step, "dropped_events": dropped})


def _scores_before_training_of(run: RunDir | None) -> dict[str, dict[str, Any]]:
    path = run.report("test-before", "json") if run is not None else None
    if path is None or not path.is_file():
        return {}
    return {"test (before fine-tuning)": json.loads(path.read_text(encoding="utf-8"))}


def score_before_training(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Score test with the model as loaded (step 5 of the recipe: compare with the model before fine-tuning).

    Dev is scored before training by `fit` itself (reports/dev-step0.json).
    """
    if not (experiment.config.train.eval_before_training and "test" in experiment.splits):
        return {}
    report, predictions = evaluate(experiment, experiment.splits["test"])  # sharded over the processes
    if not experiment.runtime.is_main:
        return {}
    write_report(experiment.run, "test-before", experiment.task, report)
    write_predictions(experiment.run.prediction_file("test-before"), experiment.task,
                      experiment.splits["test"].examples, predictions)
    _log_event(experiment, {"event": "eval", "split": "test-before", "step": 0,
                            **experiment.task.headline(report)})
    return {"test (before fine-tuning)": report}


def test_best(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Reload the best checkpoint exactly as `homofit eval` does and score test with it; dev too, unless this
    process scored dev with that very model when it saved it (the scores are the same: dev is scored once)."""
    best_path = experiment.run.checkpoint("best")
    model = experiment.task.build_model(str(best_path), experiment.config.model, experiment.tokenizer,
                                        from_checkpoint=True)
    model.to(experiment.runtime.device)
    scores = {}
    for name in ("dev", "test"):
        if name not in experiment.splits:
            continue
        split = experiment.splits[name]
        if name == "dev" and experiment.best_dev is not None:
            report, predictions = experiment.best_dev
        else:
            report, predictions = evaluate(experiment, split, model, sharded=False)  # the others have finished
        write_report(experiment.run, name, experiment.task, report)
        write_predictions(experiment.run.prediction_file(name), experiment.task, split.examples, predictions)
        _log_event(experiment, {"event": "eval", "split": name, "step": -1,
                                **experiment.task.headline(report)})
        scores[name] = report
    return scores


def find_resumable_run(config: Any) -> Path | None:
    """`--resume auto`: the newest unfinished run under output.dir whose spec and data match this one."""
    from homofit.rundir import run_candidates

    current_spec = fingerprint(config_to_dict(config), {}, [])["spec_sha256"]
    found = []
    for root in run_candidates(config.output.dir):
        try:
            document = read_trainer_state(RunDir(root).checkpoint("last"))
        except HomofitError:
            continue
        saved = document.get("fingerprint", {})
        if document.get("finished") or saved.get("spec_sha256") != current_spec:
            continue
        paths = {name: getattr(config.data, name) for name in saved.get("data", {})}
        if any(path is None or not Path(path).exists() or file_sha256(Path(path)) != saved["data"][name]
               for name, path in paths.items()):
            continue
        found.append((RunDir(root).checkpoint("last").stat().st_mtime, root))
    return max(found)[1] if found else None


def _close_log(runtime: Runtime) -> None:
    for handler in list(log.handlers):
        if isinstance(handler, logging.FileHandler):
            log.removeHandler(handler)
            handler.close()
    if runtime.world_size > 1:
        import torch

        torch.distributed.destroy_process_group()
