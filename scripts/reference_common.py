"""What the reference recipes in scripts/ share: the spec, its mapping onto the Trainer, and the command line.

A reference recipe (reference_ner.py, reference_classification.py, reference_qa.py, reference_generation.py)
is the plain Hugging Face way of fine-tuning one task family, fed from the same homofit spec as `homofit train`
so that the two runs differ only in the training code. This module loads the spec with homofit's own loader
(defaults and overrides resolve identically), refuses every setting the recipes do not reproduce (UNREPRODUCED:
exit 2, naming the key), turns the rest into `TrainingArguments`, and writes the results. Each recipe keeps
only its task: reading the data, tokenizing, its model class and its metric.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # homofit from this checkout, installed or not
    sys.path.insert(0, str(REPO_ROOT))

# homofit's schedules by the Trainer's names; homofit's "constant" warms up first, as constant_with_warmup does
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass(frozen=True)
class Unreproduced:
    """A spec setting the references do not carry over to the Trainer: with any value but its default,
    homofit would train one way and the reference another."""

    key: str
    reason: str
    reproduced_by: tuple[str, ...] = ()  # task types whose reference does reproduce it


# Every spec setting that changes what is trained or scored and that a reference does not map. Settings left
# out change neither (data.cache, train.compile, train.pad_to_multiple_of, train.save_every, output.*), are
# read only under a setting refused here (optim.momentum, model.freeze_layers, task.threshold), or are mapped
# by every reference that can meet them (optimizer, schedule, batch, steps, seed, precision, batching, ...).
UNREPRODUCED: tuple[Unreproduced, ...] = (
    Unreproduced("optim.name", "the references train with the Trainer's AdamW only"),
    Unreproduced("model.freeze", "the references train every weight of the model"),
    Unreproduced("model.lora", "the references fine-tune every weight and build no LoRA adapters"),
    Unreproduced("model.dropout", "the references keep the checkpoint's own dropout probabilities"),
    Unreproduced("model.gguf_file", "this reference loads no GGUF file: it would train another model",
                 reproduced_by=("translation",)),
    Unreproduced("data.dev", "this reference scores no dev split and keeps the model after the last step, while "
                             "homofit would score test with its best-dev checkpoint",
                 reproduced_by=("ner", "classification")),
    Unreproduced("data.dev_split", "the references read dev from data.dev and carve nothing out of data.train"),
    Unreproduced("data.format", "this reference reads one file format and picks no other",
                 reproduced_by=("classification",)),
    Unreproduced("data.columns", "this reference reads its format's fixed layout, not named columns",
                 reproduced_by=("classification",)),
    Unreproduced("data.stride", "this reference cuts long inputs at data.max_length instead of sliding windows "
                                "over them", reproduced_by=("qa",)),
    Unreproduced("data.max_length", "the translation reference does not cut prompts to data.max_length",
                 reproduced_by=("ner", "classification", "qa")),
    Unreproduced("data.skip_empty_targets", "the references keep every training example"),
    Unreproduced("train.eval_every", "the references score dev once an epoch (eval_strategy=epoch), not every N "
                                     "steps"),
    Unreproduced("train.early_stopping.patience", "the references train every step and stop no run early"),
    Unreproduced("train.early_stopping.metric", "the references keep the checkpoint best on the task's headline "
                                                "metric"),
    Unreproduced("train.early_stopping.mode", "the references keep the checkpoint best on the task's headline "
                                              "metric, higher being better"),
    Unreproduced("train.nan_policy", "the Trainer does not skip the update of a step whose loss is not finite"),
    Unreproduced("task.scheme", "the NER reference reads the tags as IOB2 and converts no other scheme"),
    Unreproduced("task.label_names", "the NER reference reads tag names, not integer ids",
                 reproduced_by=("classification",)),
    Unreproduced("task.multi_label", "the classification reference is single-label (a softmax over the labels)"),
    Unreproduced("task.class_weights", "the classification reference uses the Trainer's unweighted loss"),
    Unreproduced("task.prompt_style", "the translation reference always prompts with the tokenizer's chat "
                                      "template"),
)


def unreproduced_settings(spec: Any, task_type: str) -> list[str]:
    """One line for each setting of UNREPRODUCED that the spec moves off its default."""
    problems = []
    for setting in UNREPRODUCED:
        if task_type in setting.reproduced_by:
            continue
        *parents, name = setting.key.split(".")
        section = spec
        for part in parents:
            section = getattr(section, part, None)
        fields = getattr(type(section), "model_fields", {})
        if name not in fields:  # a task key of another task family
            continue
        value, default = getattr(section, name), fields[name].get_default(call_default_factory=True)
        if value != default:
            problems.append(f"{setting.key}={_shown(value)} (default {_shown(default)}): {setting.reason}")
    return problems


def _shown(value: Any) -> str:
    """A spec value as the spec would write it (JSON, which YAML reads)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str)


def load_spec(spec_path: Path, overrides: list[str], task_type: str) -> Any:
    """The validated spec, when this task's reference reproduces all of it; else HomofitError naming the keys."""
    from homofit.config import load_config
    from homofit.errors import HomofitError

    spec = load_config(spec_path, overrides)
    if spec.task.type != task_type:
        raise HomofitError(f"task.type={spec.task.type}: this recipe reproduces {task_type} specs only.")
    problems = unreproduced_settings(spec, task_type)
    if problems:
        raise HomofitError("the Trainer recipe does not reproduce these settings, so the two runs would differ; "
                           "leave them at their defaults:\n  " + "\n  ".join(problems))
    for name in ("train", "dev", "test"):
        path = getattr(spec.data, name)
        if path is not None and not Path(path).exists():
            raise HomofitError(f"data.{name}: {path} not found (relative paths start from the current folder).")
    return spec


def require(condition: bool, message: str) -> None:
    """A task's own limit on what its recipe reproduces: HomofitError (exit 2) when the spec passes it."""
    from homofit.errors import HomofitError

    if not condition:
        raise HomofitError(message)


# -- spec -> TrainingArguments ---------------------------------------------------------------------------


@dataclass
class TrainerSettings:
    """What the Trainer takes from the spec, as plain values."""

    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    schedule: str
    warmup_steps: int
    warmup_ratio: float
    epochs: float
    max_steps: int | None
    batch_size: int
    eval_batch_size: int
    grad_accum: int
    max_grad_norm: float | None
    precision: str
    device: str
    log_every: int
    seed: int
    group_by_length: bool  # train.batching: by_length, as the Trainer's own length grouping


def trainer_settings(spec: Any) -> TrainerSettings:
    optim, train = spec.optim, spec.train
    return TrainerSettings(
        lr=optim.lr, weight_decay=optim.weight_decay, betas=tuple(optim.betas), eps=optim.eps,
        schedule=optim.schedule, warmup_steps=optim.warmup_steps, warmup_ratio=optim.warmup_ratio,
        epochs=train.epochs, max_steps=train.max_steps, batch_size=train.batch_size,
        eval_batch_size=train.eval_batch_size or train.batch_size, grad_accum=train.grad_accum,
        max_grad_norm=train.max_grad_norm, precision=train.precision, device=train.device,
        log_every=train.log_every, seed=train.seed, group_by_length=train.batching == "by_length",
    )


@dataclass
class Basics:
    """What every recipe takes from the spec alike: the model, the example caps, the Trainer's settings."""

    model_path: str
    max_train_samples: int | None  # the first N training examples, as homofit reads them
    max_eval_samples: int | None  # the first N of each split scored
    trainer: TrainerSettings


def basics(spec: Any, model_path: str | None = None) -> Basics:
    """The spec's model folder (or `model_path`), resolved as homofit resolves it, and the rest of Basics."""
    from homofit.model import resolve_model_path

    return Basics(model_path=resolve_model_path(model_path or spec.model.name_or_path),
                  max_train_samples=spec.data.max_train_samples, max_eval_samples=spec.data.max_eval_samples,
                  trainer=trainer_settings(spec))


def total_optimizer_steps(settings: TrainerSettings, train_size: int) -> int:
    """homofit's count: train.max_steps, else train.epochs of ceil(batches / accumulation) steps."""
    steps_per_epoch = math.ceil(math.ceil(train_size / settings.batch_size) / settings.grad_accum)
    return settings.max_steps or math.ceil(settings.epochs * steps_per_epoch)


def precision_in_use(settings: TrainerSettings) -> str:
    """train.precision with `auto` decided as homofit decides it: bf16 on a GPU that has it, else fp32."""
    import torch

    if settings.precision != "auto":
        return settings.precision
    use_cuda = settings.device != "cpu" and torch.cuda.is_available()
    return "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"


def training_arguments(settings: TrainerSettings, output_dir: Path, train_size: int, select_on: str | None = None,
                       **extra: Any) -> Any:
    """TrainingArguments with the spec's values; names that changed across transformers versions are picked here.

    With `select_on` (a metric of compute_metrics), dev is scored after every epoch and the checkpoint best on it
    is loaded at the end, as homofit scores test with its best-dev checkpoint; without, nothing is scored or saved.
    """
    from transformers import TrainingArguments

    accepted = inspect.signature(TrainingArguments.__init__).parameters
    precision = precision_in_use(settings)
    # warmup_ratio is gone in transformers 5; an explicit step count means the same in every version.
    warmup = settings.warmup_steps or math.ceil(settings.warmup_ratio * total_optimizer_steps(settings, train_size))
    strategy = "epoch" if select_on else "no"
    arguments: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": settings.lr,
        "weight_decay": settings.weight_decay,
        "adam_beta1": settings.betas[0],
        "adam_beta2": settings.betas[1],
        "adam_epsilon": settings.eps,
        "lr_scheduler_type": SCHEDULES[settings.schedule],
        "warmup_steps": warmup,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps or -1,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.eval_batch_size,
        "gradient_accumulation_steps": settings.grad_accum,
        "max_grad_norm": settings.max_grad_norm or 0.0,
        "seed": settings.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "logging_steps": settings.log_every,
        "save_strategy": strategy,
        "load_best_model_at_end": select_on is not None,
        "metric_for_best_model": select_on,
        "greater_is_better": True,
        "save_total_limit": 2 if select_on else None,
        "report_to": [],
        "disable_tqdm": True,
        **extra,
    }
    if settings.group_by_length:  # transformers 5 names it a sampling strategy; 4.x has the flag
        if "train_sampling_strategy" in accepted:
            arguments["train_sampling_strategy"] = "group_by_length"
        else:
            arguments["group_by_length"] = True
    arguments["eval_strategy" if "eval_strategy" in accepted else "evaluation_strategy"] = strategy
    if settings.device == "cpu":
        arguments["use_cpu" if "use_cpu" in accepted else "no_cuda"] = True
    if "save_only_model" in accepted:
        arguments["save_only_model"] = True
    return TrainingArguments(**arguments)


def seeded_model(model_class: Any, basics: Basics, **options: Any) -> Any:
    """`model_class.from_pretrained` after transformers' set_seed, so the new head starts from the spec's seed."""
    from transformers import set_seed

    set_seed(basics.trainer.seed)
    return model_class.from_pretrained(basics.model_path, **options)


@functools.cache
def _sequential_eval_trainer() -> type:
    import torch
    from transformers import Trainer

    class SequentialEvalTrainer(Trainer):
        """Length grouping for training only: transformers 5 also groups the evaluation batches under
        group_by_length, which returns the predictions in another order than the examples they score."""

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            return torch.utils.data.SequentialSampler(eval_dataset)

    return SequentialEvalTrainer


def build_trainer(settings: TrainerSettings, output_dir: Path, model: Any, train_features: list[dict],
                  collator: Any, eval_features: list[dict] | None = None,
                  compute_metrics: Callable[[Any], dict[str, float]] | None = None, select_on: str | None = None,
                  **extra_arguments: Any) -> Any:
    """The Trainer, ready to train; with `select_on`, dev (`eval_features`) picks the checkpoint kept."""
    arguments = training_arguments(settings, output_dir, len(train_features), select_on, **extra_arguments)
    return _sequential_eval_trainer()(model=model, args=arguments, train_dataset=train_features,
                                      eval_dataset=eval_features, data_collator=collator,
                                      compute_metrics=compute_metrics)


# -- running and results ---------------------------------------------------------------------------------


def train(trainer: Any) -> dict[str, Any]:
    """Train; what the run did: optimizer steps, training time and the logged losses."""
    started = time.perf_counter()
    output = trainer.train()
    return {
        "optimizer_steps": trainer.state.global_step,
        "train_runtime_s": round(time.perf_counter() - started, 1),
        "train_samples_per_second": output.metrics.get("train_samples_per_second"),
        "train_log": [{"step": entry["step"], "loss": entry["loss"], "lr": entry.get("learning_rate")}
                      for entry in trainer.state.log_history if "loss" in entry],
    }


def score_splits(trainer: Any, features: dict[str, list[dict]],
                 score: Callable[[str, Any], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each split's predictions scored by `score(split name, predictions)` against its own gold labels."""
    trainer.compute_metrics = None  # it scores dev; each split is scored here instead
    return {name: score(name, trainer.predict(split).predictions) for name, split in features.items()}


def best_checkpoint(trainer: Any) -> dict[str, Any]:
    """Which checkpoint was loaded at the end, on which dev metric, and dev after every epoch."""
    metric = trainer.args.metric_for_best_model
    best = trainer.state.best_model_checkpoint
    per_epoch = [{"epoch": entry["epoch"], "step": entry["step"],
                  **{key.removeprefix("eval_"): value for key, value in entry.items() if key.startswith("eval_")
                     and not key.endswith(("runtime", "per_second"))}}
                 for entry in trainer.state.log_history if f"eval_{metric}" in entry]
    return {"selected_on": metric, "best_checkpoint": best and Path(best).name, "best_dev": trainer.state.best_metric,
            "dev_per_epoch": per_epoch}


def versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def jsonable(value: Any) -> Any:
    """Settings as JSON: dataclasses as dicts, paths as strings."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class Recipe:
    """One task's reference: what `main` needs to read its spec, run it and describe the result."""

    script: str
    task_type: str
    spec_example: str
    # The value of a perfect score in this recipe's results, as in homofit's reports of the task: 1.0 where
    # scores are fractions (entity F1, accuracy), 100.0 where they are points (SQuAD F1, BLEU).
    perfect_score: float
    load: Callable[[Path, list[str], str | None], Any]  # (spec, overrides, --model) -> the recipe's settings
    run: Callable[[Any, Path], dict[str, Any]]  # (settings, Trainer output folder) -> results by split
    summary: Callable[[dict[str, Any]], list[str]]  # the lines printed at the end


def main(recipe: Recipe, doc: str) -> None:
    """The command line every reference has: spec, overrides, --out; a spec it cannot reproduce exits 2."""
    from homofit.errors import HomofitError

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help=f"A homofit {recipe.task_type} spec, e.g. {recipe.spec_example}.")
    parser.add_argument("overrides", nargs="*", help="Dotted overrides as for homofit train, e.g. train.seed=1.")
    parser.add_argument("--out", type=Path, help="Write the scores here (JSON); needed unless --check.")
    parser.add_argument("--check", action="store_true",
                        help="Only check that this recipe reproduces the spec: exit 0, or 2 with the reason.")
    parser.add_argument("--model", help="A model folder; default: the spec's model.name_or_path.")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="Overrides the spec's train.device.")
    parser.add_argument("--output-dir", type=Path, help="Trainer checkpoints go here; default: a temporary folder.")
    args = parser.parse_args()
    if args.out is None and not args.check:
        parser.error("give --out FILE (or --check)")
    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    try:
        settings = recipe.load(args.spec, overrides, args.model)
        if args.check:
            print(f"{recipe.script}: reproduces {args.spec} {' '.join(overrides)}".rstrip())
            return
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"{Path(recipe.script).stem}-") as scratch:
            scores = recipe.run(settings, args.output_dir or Path(scratch))
    except HomofitError as error:
        print(f"{recipe.script}: {error}", file=sys.stderr)
        sys.exit(error.exit_code)  # 2, as `homofit train` exits on a spec it cannot run
    result = {"task": recipe.task_type, "perfect_score": recipe.perfect_score, **scores,
              "wall_s": round(time.perf_counter() - started, 1), "settings": jsonable(settings),
              "versions": versions()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in recipe.summary(result):
        print(line)
