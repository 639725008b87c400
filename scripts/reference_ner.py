"""The plain Hugging Face token-classification recipe, run on a homofit NER spec, for side-by-side benchmarks.

It follows transformers' `run_ner.py` example: AutoTokenizer with is_split_into_words and truncation,
the word's label on its first subword and -100 elsewhere, AutoModelForTokenClassification,
DataCollatorForTokenClassification, Trainer + TrainingArguments, seqeval at entity level.
It reads the same spec as `homofit train` (data files, model, optimizer, schedule, batch size, epochs,
seed, precision), so the two runs differ only in the training code.

    python scripts/reference_ner.py configs/wnut17.yaml [key=value ...] --out reference.json

Dev is scored after every epoch and the checkpoint with the best dev entity F1 is loaded at the end
(`load_best_model_at_end`), as homofit scores test with its best-dev checkpoint. Words left without a
subword (cut off by truncation, or characters the tokenizer drops) count as predicted O, so both tools are
scored against every gold entity.
"""

from __future__ import annotations

import argparse
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

IGNORE_INDEX = -100
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]


@dataclass
class Settings:
    """Everything the recipe takes from the spec, as plain values."""

    train: Path
    dev: Path | None
    test: Path | None
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
    group_by_length: bool = False  # the Trainer's own length grouping, for train.batching: by_length


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    from homofit.config import load_config
    from homofit.model import resolve_model_path

    spec = load_config(spec_path, overrides)
    unsupported = {
        "task.type": (spec.task.type, "ner"),
        "task.scheme": (spec.task.scheme, "IOB2"),
        "optim.name": (spec.optim.name, "adamw"),
        "model.freeze": (spec.model.freeze, "none"),
        "model.dropout": (spec.model.dropout, None),
        "data.format": (spec.data.format, "auto"),
        "data.columns": (spec.data.columns, {}),
        "data.max_train_samples": (spec.data.max_train_samples, None),
    }
    for key, (value, expected) in unsupported.items():
        if value != expected:
            raise SystemExit(f"reference_ner.py: {key}={value!r} is not mapped to the Trainer recipe "
                             f"(only {expected!r}).")
    return Settings(
        train=spec.data.train, dev=spec.data.dev, test=spec.data.test,
        model_path=model_path or resolve_model_path(spec.model.name_or_path),
        max_length=spec.data.max_length,
        lr=spec.optim.lr, weight_decay=spec.optim.weight_decay, betas=tuple(spec.optim.betas), eps=spec.optim.eps,
        schedule=spec.optim.schedule, warmup_steps=spec.optim.warmup_steps, warmup_ratio=spec.optim.warmup_ratio,
        epochs=spec.train.epochs, max_steps=spec.train.max_steps, batch_size=spec.train.batch_size,
        eval_batch_size=spec.train.eval_batch_size or spec.train.batch_size, grad_accum=spec.train.grad_accum,
        max_grad_norm=spec.train.max_grad_norm, precision=spec.train.precision, device=spec.train.device,
        log_every=spec.train.log_every, seed=spec.train.seed,
        group_by_length=spec.train.batching == "by_length",
    )


# -- data -----------------------------------------------------------------------------------------------


def read_conll(path: Path) -> list[Sentence]:
    """Token in the first column, IOB2 tag in the last; a blank line ends a sentence."""
    sentences, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.split()
        if not cells:
            if tokens:
                sentences.append(Sentence(tokens, tags))
                tokens, tags = [], []
            continue
        tokens.append(cells[0])
        tags.append(cells[-1])
    if tokens:
        sentences.append(Sentence(tokens, tags))
    return sentences


def label_list(sentences: list[Sentence]) -> list[str]:
    """O, then B-/I- of each entity type in alphabetical order: the order homofit gives its labels."""
    types = sorted({tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in types for prefix in ("B", "I")]


def tokenize_and_align(sentences: list[Sentence], tokenizer: Any, label_to_id: dict[str, int],
                       max_length: int) -> tuple[list[dict[str, list[int]]], list[list[int | None]]]:
    """run_ner.py's `tokenize_and_align_labels` with label_all_tokens=False; also each feature's word ids."""
    encoded = tokenizer([sentence.tokens for sentence in sentences], is_split_into_words=True,
                        truncation=True, max_length=max_length)
    features, word_ids = [], []
    for index, sentence in enumerate(sentences):
        labels, previous = [], None
        word_ids.append(encoded.word_ids(index))
        for word in word_ids[-1]:
            if word is None or word == previous:
                labels.append(IGNORE_INDEX)
            else:
                labels.append(label_to_id[sentence.tags[word]])
            previous = word
        feature = {key: encoded[key][index] for key in encoded}
        feature["labels"] = labels
        features.append(feature)
    return features, word_ids


# -- scores ---------------------------------------------------------------------------------------------


def predicted_tags(logits: Any, word_ids: list[list[int | None]], sentences: list[Sentence],
                   labels: list[str]) -> tuple[list[list[str]], int]:
    """Each word's tag from its first subword; words without a subword (cut by truncation, or characters the
    tokenizer drops) are O, so every gold entity is scored. Returns (tags, words without a subword)."""
    best = logits.argmax(axis=-1)
    predictions, lost = [], 0
    for row, sentence in enumerate(sentences):
        tags: list[str | None] = [None] * len(sentence.tags)
        for position, word in enumerate(word_ids[row]):
            if word is not None and tags[word] is None:
                tags[word] = labels[int(best[row][position])]
        lost += tags.count(None)
        predictions.append([tag or "O" for tag in tags])
    return predictions, lost


def repair_iob2(tags: list[str]) -> list[str]:
    """An I-X that does not continue an X entity starts one (homofit's reading of model output)."""
    repaired: list[str] = []
    for tag in tags:
        if tag.startswith("I-") and (not repaired or repaired[-1] == "O" or repaired[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        repaired.append(tag)
    return repaired


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval entity-level micro scores: default (conlleval) mode, strict IOB2, and strict after the I- repair."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    repaired = [repair_iob2(tags) for tags in predicted]
    strict = {"mode": "strict", "scheme": IOB2}
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "precision_strict": float(precision_score(gold, predicted, zero_division=0, **strict)),
        "recall_strict": float(recall_score(gold, predicted, zero_division=0, **strict)),
        "f1_strict": float(f1_score(gold, predicted, zero_division=0, **strict)),
        "f1_repaired_strict": float(f1_score(gold, repaired, zero_division=0, **strict)),
    }


# -- the recipe -----------------------------------------------------------------------------------------


def total_optimizer_steps(settings: Settings, train_size: int) -> int:
    steps_per_epoch = math.ceil(math.ceil(train_size / settings.batch_size) / settings.grad_accum)
    return settings.max_steps or math.ceil(settings.epochs * steps_per_epoch)


def training_arguments(settings: Settings, output_dir: Path, train_size: int, evaluate: bool) -> Any:
    """TrainingArguments with the spec's values; names that changed across transformers versions are picked here."""
    import torch
    from transformers import TrainingArguments

    accepted = inspect.signature(TrainingArguments.__init__).parameters
    use_cuda = settings.device != "cpu" and torch.cuda.is_available()
    precision = settings.precision
    if precision == "auto":
        precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    # warmup_ratio is gone in transformers 5; an explicit step count means the same in every version.
    warmup = settings.warmup_steps or math.ceil(settings.warmup_ratio * total_optimizer_steps(settings, train_size))
    strategy = "epoch" if evaluate else "no"
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
        "load_best_model_at_end": evaluate,
        "metric_for_best_model": "f1" if evaluate else None,
        "greater_is_better": True,
        "save_total_limit": 2 if evaluate else None,
        "report_to": [],
        "disable_tqdm": True,
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


def build_trainer(settings: Settings, output_dir: Path, evaluate: bool = True) -> tuple[Any, dict[str, Any]]:
    """The Trainer, ready to train, and the data it was built from (sentences, features, labels)."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        set_seed,
    )

    train_sentences = read_conll(settings.train)
    labels = label_list(train_sentences)
    label_to_id = {label: index for index, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(settings.model_path)
    splits = {"train": train_sentences}
    for name in ("dev", "test") if evaluate else ():
        if getattr(settings, name) is None:
            raise SystemExit(f"reference_ner.py: the spec needs data.{name}.")
        splits[name] = read_conll(getattr(settings, name))
    encoded = {name: tokenize_and_align(sentences, tokenizer, label_to_id, settings.max_length)
               for name, sentences in splits.items()}
    features = {name: split_features for name, (split_features, _) in encoded.items()}
    word_ids = {name: split_word_ids for name, (_, split_word_ids) in encoded.items()}
    set_seed(settings.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        settings.model_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_to_id)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        tags, _ = predicted_tags(prediction.predictions, word_ids["dev"], splits["dev"], labels)
        return entity_scores([sentence.tags for sentence in splits["dev"]], tags)

    class SequentialEvalTrainer(Trainer):
        """Length grouping for training only: transformers 5 also groups the evaluation batches under
        group_by_length, which returns the predictions in another order than the sentences they score."""

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            import torch

            return torch.utils.data.SequentialSampler(eval_dataset)

    trainer = SequentialEvalTrainer(
        model=model,
        args=training_arguments(settings, output_dir, len(train_sentences), evaluate),
        train_dataset=features["train"],
        eval_dataset=features["dev"] if evaluate else None,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=compute_metrics if evaluate else None,
    )
    return trainer, {"splits": splits, "features": features, "word_ids": word_ids, "labels": labels}


def score_split(trainer: Any, data: dict[str, Any], name: str) -> dict[str, Any]:
    sentences = data["splits"][name]
    output = trainer.predict(data["features"][name])
    tags, lost = predicted_tags(output.predictions, data["word_ids"][name], sentences, data["labels"])
    return {**entity_scores([sentence.tags for sentence in sentences], tags), "words_without_subword": lost,
            "sentences": len(sentences)}


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    trainer, data = build_trainer(settings, output_dir)
    train_started = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - train_started
    trainer.compute_metrics = None  # it scores dev; each split is scored below against its own gold tags
    scores = {name: score_split(trainer, data, name) for name in ("dev", "test")}
    history = trainer.state.log_history
    return {
        **scores,
        "best_checkpoint": trainer.state.best_model_checkpoint and Path(trainer.state.best_model_checkpoint).name,
        "best_dev_f1": trainer.state.best_metric,
        "dev_per_epoch": [{"epoch": entry["epoch"], "step": entry["step"], "f1": entry["eval_f1"],
                           "f1_strict": entry["eval_f1_strict"]} for entry in history if "eval_f1" in entry],
        "train_log": [{"step": entry["step"], "loss": entry["loss"], "lr": entry["learning_rate"]}
                      for entry in history if "loss" in entry and "learning_rate" in entry],
        "labels": data["labels"],
        "optimizer_steps": trainer.state.global_step,
        "train_runtime_s": round(train_seconds, 1),
        "train_samples_per_second": train_output.metrics.get("train_samples_per_second"),
        "wall_s": round(time.perf_counter() - started, 1),
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(settings).items()},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="A homofit NER spec, e.g. configs/wnut17.yaml.")
    parser.add_argument("overrides", nargs="*", help="Dotted overrides as for homofit train, e.g. train.seed=1.")
    parser.add_argument("--out", type=Path, required=True, help="Write the scores here (JSON).")
    parser.add_argument("--model", help="A model folder; default: the spec's model.name_or_path.")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="Overrides the spec's train.device.")
    parser.add_argument("--output-dir", type=Path, help="Trainer checkpoints go here; default: a temporary folder.")
    args = parser.parse_args()
    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    settings = settings_from_spec(args.spec, overrides, args.model)
    with tempfile.TemporaryDirectory(prefix="reference-ner-") as scratch:
        result = run(settings, args.output_dir or Path(scratch))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name in ("dev", "test"):
        if name in result:
            scores = result[name]
            print(f"{name}: entity F1 {scores['f1']:.4f} (seqeval default), {scores['f1_strict']:.4f} (strict IOB2), "
                  f"{scores['f1_repaired_strict']:.4f} (strict after I- repair, as homofit)")
    print(f"best checkpoint: {result['best_checkpoint']} (dev F1 {result['best_dev_f1']:.4f}); "
          f"wall {result['wall_s']} s")


if __name__ == "__main__":
    main()
