"""The plain Hugging Face sequence-classification recipe, run on a homofit classification spec, for benchmarks.

It follows transformers' `run_glue.py` example: AutoTokenizer with truncation to max_length,
AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer + TrainingArguments, and sklearn for
accuracy and F1. It reads the same spec as `homofit train` (data files and columns, the first max_train_samples training
rows and max_eval_samples dev and test rows, model, optimizer, schedule, batching, batch size, epochs, seed,
precision) through reference_common.py, which refuses the settings no reference reproduces, so the two runs
differ only in the training code. Single-label tasks only.

    python scripts/reference_classification.py configs/sst2.yaml [key=value ...] --out reference.json

Dev is scored after every epoch and the checkpoint with the best dev accuracy is loaded at the end
(`load_best_model_at_end`), as homofit scores test with its best-dev checkpoint.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # reference_common, however this file is loaded
import reference_common as common

TASK_TYPE = "classification"


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
    max_length: int
    basics: common.Basics


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    from homofit.data.readers import detect_format

    spec = common.load_spec(spec_path, overrides, TASK_TYPE)
    common.require(spec.data.dev is not None, "the classification reference needs data.dev (it picks the checkpoint).")
    splits = {name: getattr(spec.data, name) for name in ("train", "dev", "test") if getattr(spec.data, name)}
    file_format = detect_format(splits["train"], spec.data.format)
    common.require(file_format in ("csv", "tsv", "jsonl"),
                   f"data.train: {splits['train']}: the classification reference reads CSV, TSV or JSONL, "
                   f"not {file_format}.")
    columns = {"text": "text", "label": "label", **spec.data.columns}
    header = spec.data.header
    return Settings(
        splits=splits, file_format=file_format,
        header=any(isinstance(column, str) for column in columns.values()) if header is None else header,
        columns=columns, label_names=spec.task.label_names, max_length=spec.data.max_length,
        basics=common.basics(spec, model_path),
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


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    # the first max_*_samples rows of each split, as homofit reads them
    caps = {"train": settings.basics.max_train_samples}
    splits = {name: read_examples(path, settings)[: caps.get(name, settings.basics.max_eval_samples)]
              for name, path in settings.splits.items()}
    labels = label_list(splits["train"], settings.label_names)
    label_to_id = {label: index for index, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(settings.basics.model_path)
    features = {name: tokenize(examples, tokenizer, label_to_id, settings.max_length)
                for name, examples in splits.items()}
    model = common.seeded_model(AutoModelForSequenceClassification, settings.basics, num_labels=len(labels),
                                id2label=dict(enumerate(labels)), label2id=label_to_id)

    def score(name: str, logits: Any) -> dict[str, Any]:
        return {**scores(logits, [example.label for example in splits[name]], labels), "examples": len(splits[name])}

    trainer = common.build_trainer(settings.basics.trainer, output_dir, model, features["train"],
                                   DataCollatorWithPadding(tokenizer), eval_features=features["dev"],
                                   compute_metrics=lambda prediction: score("dev", prediction.predictions),
                                   select_on="accuracy")
    training = common.train(trainer)
    results = common.score_splits(trainer, {name: features[name] for name in ("dev", "test") if name in features},
                                  score)
    return {**results, "train_examples": len(splits["train"]), **common.best_checkpoint(trainer), **training,
            "labels": labels}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"{name}: accuracy {result[name]['accuracy']:.4f}, macro-F1 {result[name]['macro_f1']:.4f}"
             for name in ("dev", "test") if name in result]
    best = (f"best checkpoint: {result['best_checkpoint']} (dev accuracy {result['best_dev']:.4f}); "
            f"wall {result['wall_s']} s")
    return [*lines, best]


RECIPE = common.Recipe(script="reference_classification.py", task_type=TASK_TYPE, spec_example="configs/sst2.yaml",
                       perfect_score=1.0, load=settings_from_spec, run=run, summary=summary)

if __name__ == "__main__":
    common.main(RECIPE, __doc__)
