"""The plain Hugging Face sequence-classification recipe, run on a homofit classification spec, for benchmarks.

It follows transformers' `run_glue.py` example: AutoTokenizer with truncation to max_length,
AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer + TrainingArguments, and sklearn for
accuracy and F1. It reads the same spec as `homofit train` (data files and columns, the first
max_train_samples training rows, model, optimizer, schedule, batch size, epochs, seed, precision), so the
two runs differ only in the training code. Single-label tasks only.

    python scripts/reference_classification.py configs/sst2.yaml [key=value ...] --out reference.json

Dev is scored after every epoch and the checkpoint with the best dev accuracy is loaded at the end
(`load_best_model_at_end`), as homofit scores test with its best-dev checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class Example:
    text: str
    text_pair: str | None
    label: str


@dataclass
class Settings:
    """Everything the recipe takes from the spec, as plain values."""

    splits: dict[str, Path]
    file_format: str
    header: bool
    columns: dict[str, int | str]
    label_names: list[str] | None
    max_train_samples: int | None
    model_path: str
    max_length: int
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


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    from homofit.config import load_config
    from homofit.data.readers import detect_format
    from homofit.model import resolve_model_path

    spec = load_config(spec_path, overrides)
    unsupported = {
        "task.type": (spec.task.type, "classification"),
        "task.multi_label": (getattr(spec.task, "multi_label", False), False),
        "task.class_weights": (getattr(spec.task, "class_weights", None), None),
        "optim.name": (spec.optim.name, "adamw"),
        "model.freeze": (spec.model.freeze, "none"),
        "model.dropout": (spec.model.dropout, None),
    }
    for key, (value, expected) in unsupported.items():
        if value != expected:
            raise SystemExit(f"reference_classification.py: {key}={value!r} is not mapped to the Trainer recipe "
                             f"(only {expected!r}).")
    splits = {name: getattr(spec.data, name) for name in ("train", "dev", "test") if getattr(spec.data, name)}
    columns = {"text": "text", "label": "label", **spec.data.columns}
    header = spec.data.header
    return Settings(
        splits=splits, file_format=detect_format(splits["train"], spec.data.format),
        header=any(isinstance(column, str) for column in columns.values()) if header is None else header,
        columns=columns, label_names=spec.task.label_names, max_train_samples=spec.data.max_train_samples,
        model_path=model_path or resolve_model_path(spec.model.name_or_path),
        max_length=spec.data.max_length,
        lr=spec.optim.lr, weight_decay=spec.optim.weight_decay, betas=tuple(spec.optim.betas), eps=spec.optim.eps,
        schedule=spec.optim.schedule, warmup_steps=spec.optim.warmup_steps, warmup_ratio=spec.optim.warmup_ratio,
        epochs=spec.train.epochs, max_steps=spec.train.max_steps, batch_size=spec.train.batch_size,
        eval_batch_size=spec.train.eval_batch_size or spec.train.batch_size, grad_accum=spec.train.grad_accum,
        max_grad_norm=spec.train.max_grad_norm, precision=spec.train.precision, device=spec.train.device,
        log_every=spec.train.log_every, seed=spec.train.seed,
    )


# -- data -----------------------------------------------------------------------------------------------


def read_examples(path: Path, settings: Settings) -> list[Example]:
    """Rows of a CSV/TSV file (csv module) or records of a JSONL file, with the spec's columns."""
    columns = settings.columns
    if settings.file_format == "jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [{key: record.get(column) for key, column in columns.items()} for record in records]
    else:
        with path.open(encoding="utf-8", newline="") as handle:
            table = [row for row in csv.reader(handle, delimiter="\t" if settings.file_format == "tsv" else ",") if row]
        names = table.pop(0) if settings.header else []
        where = {key: names.index(column) if isinstance(column, str) else column for key, column in columns.items()}
        rows = [{key: row[index] for key, index in where.items()} for row in table]
    examples = []
    for row in rows:
        label = str(row["label"]).strip()
        if settings.label_names and label not in settings.label_names:
            label = settings.label_names[int(label)]
        examples.append(Example(row["text"], row.get("text_pair"), label))
    return examples


def label_list(examples: list[Example], label_names: list[str] | None) -> list[str]:
    """The label order homofit uses: task.label_names, else sorted, numbers by value."""
    if label_names:
        return list(label_names)
    found = {example.label for example in examples}
    return sorted(found, key=lambda label: (0, int(label), "") if label.removeprefix("-").isdigit() else (1, 0, label))


def tokenize(examples: list[Example], tokenizer: Any, label_to_id: dict[str, int], max_length: int) -> list[dict]:
    pairs = [example.text_pair for example in examples] if examples[0].text_pair is not None else None
    encoded = tokenizer([example.text for example in examples], pairs, truncation=True, max_length=max_length)
    features = []
    for index, example in enumerate(examples):
        feature = {key: values[index] for key, values in encoded.items()}
        feature["labels"] = label_to_id.get(example.label, -100)
        features.append(feature)
    return features


def scores(logits: Any, gold: list[str], labels: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    predicted = [labels[index] for index in logits.argmax(axis=-1)]
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, predicted, average="weighted", zero_division=0)),
    }


# -- the recipe -----------------------------------------------------------------------------------------


def training_arguments(settings: Settings, output_dir: Path, train_size: int) -> Any:
    """TrainingArguments with the spec's values; names that changed across transformers versions are picked here."""
    import torch
    from transformers import TrainingArguments

    accepted = inspect.signature(TrainingArguments.__init__).parameters
    use_cuda = settings.device != "cpu" and torch.cuda.is_available()
    precision = settings.precision
    if precision == "auto":
        precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    steps_per_epoch = math.ceil(math.ceil(train_size / settings.batch_size) / settings.grad_accum)
    total_steps = settings.max_steps or math.ceil(settings.epochs * steps_per_epoch)
    # warmup_ratio is gone in transformers 5; an explicit step count means the same in every version.
    warmup = settings.warmup_steps or math.ceil(settings.warmup_ratio * total_steps)
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
        "save_strategy": "epoch",
        "load_best_model_at_end": True,
        "metric_for_best_model": "accuracy",
        "greater_is_better": True,
        "save_total_limit": 2,
        "report_to": [],
        "disable_tqdm": True,
    }
    arguments["eval_strategy" if "eval_strategy" in accepted else "evaluation_strategy"] = "epoch"
    if settings.device == "cpu":
        arguments["use_cpu" if "use_cpu" in accepted else "no_cuda"] = True
    if "save_only_model" in accepted:
        arguments["save_only_model"] = True
    return TrainingArguments(**arguments)


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        set_seed,
    )

    started = time.perf_counter()
    if "dev" not in settings.splits:
        raise SystemExit("reference_classification.py: the spec needs data.dev.")
    splits = {name: read_examples(path, settings) for name, path in settings.splits.items()}
    splits["train"] = splits["train"][: settings.max_train_samples]
    labels = label_list(splits["train"], settings.label_names)
    label_to_id = {label: index for index, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(settings.model_path)
    features = {name: tokenize(examples, tokenizer, label_to_id, settings.max_length) for name, examples in splits.items()}
    set_seed(settings.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        settings.model_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_to_id)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        return scores(prediction.predictions, [example.label for example in splits["dev"]], labels)

    trainer = Trainer(
        model=model,
        args=training_arguments(settings, output_dir, len(splits["train"])),
        train_dataset=features["train"],
        eval_dataset=features["dev"],
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
    )
    train_started = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - train_started
    trainer.compute_metrics = None  # it scores dev; each split is scored below against its own labels
    results = {}
    for name in ("dev", "test"):
        if name in splits:
            output = trainer.predict(features[name])
            results[name] = {**scores(output.predictions, [example.label for example in splits[name]], labels),
                             "examples": len(splits[name])}
    history = trainer.state.log_history
    return {
        **results,
        "train_examples": len(splits["train"]),
        "best_checkpoint": trainer.state.best_model_checkpoint and Path(trainer.state.best_model_checkpoint).name,
        "best_dev_accuracy": trainer.state.best_metric,
        "dev_per_epoch": [{"epoch": entry["epoch"], "step": entry["step"], "accuracy": entry["eval_accuracy"]}
                          for entry in history if "eval_accuracy" in entry],
        "train_log": [{"step": entry["step"], "loss": entry["loss"], "lr": entry["learning_rate"]}
                      for entry in history if "loss" in entry and "learning_rate" in entry],
        "labels": labels,
        "optimizer_steps": trainer.state.global_step,
        "train_runtime_s": round(train_seconds, 1),
        "train_samples_per_second": train_output.metrics.get("train_samples_per_second"),
        "wall_s": round(time.perf_counter() - started, 1),
        "settings": {key: {name: str(path) for name, path in value.items()} if key == "splits" else value
                     for key, value in vars(settings).items()},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="A homofit classification spec, e.g. configs/sst2.yaml.")
    parser.add_argument("overrides", nargs="*", help="Dotted overrides as for homofit train, e.g. train.seed=1.")
    parser.add_argument("--out", type=Path, required=True, help="Write the scores here (JSON).")
    parser.add_argument("--model", help="A model folder; default: the spec's model.name_or_path.")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="Overrides the spec's train.device.")
    parser.add_argument("--output-dir", type=Path, help="Trainer checkpoints go here; default: a temporary folder.")
    args = parser.parse_args()
    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    settings = settings_from_spec(args.spec, overrides, args.model)
    with tempfile.TemporaryDirectory(prefix="reference-classification-") as scratch:
        result = run(settings, args.output_dir or Path(scratch))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name in ("dev", "test"):
        if name in result:
            print(f"{name}: accuracy {result[name]['accuracy']:.4f}, macro-F1 {result[name]['macro_f1']:.4f}")
    print(f"best checkpoint: {result['best_checkpoint']} (dev accuracy {result['best_dev_accuracy']:.4f}); "
          f"wall {result['wall_s']} s")


if __name__ == "__main__":
    main()
