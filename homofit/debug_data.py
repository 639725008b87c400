"""`homofit debug-data`: what the data of a spec holds before a model is trained on it (spaCy's `debug data`)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# Feature keys by which a task marks an input it had to cut to fit data.max_length
TRUNCATION_KEYS = ("truncated", "source_truncated", "trimmed")


@dataclass
class SplitFacts:
    name: str
    path: str
    examples: int
    inputs: int  # after tokenization: windows of long examples count one each
    windowed: int  # examples longer than data.max_length, read in several windows
    truncated: int  # examples cut to data.max_length
    blank: int  # empty or whitespace-only inputs
    duplicates: int  # examples whose input occurs earlier in the same split
    labels: dict[str, int] = field(default_factory=dict)
    unseen_labels: dict[str, int] = field(default_factory=dict)  # dev/test labels that train never has
    in_train: int = 0  # dev/test examples whose input is also in train


@dataclass
class DataReport:
    task: str
    max_length: int
    splits: list[SplitFacts]
    warnings: list[str]


def debug_data(config: Any) -> DataReport:
    """Read and tokenize every split as training would (the model is built too: a generation task's inputs
    depend on its backbone), and count what usually goes wrong with data."""
    from homofit.checkpoint import is_homofit_checkpoint
    from homofit.model import load_tokenizer
    from homofit.tasks import build_task
    from homofit.train import checkpoint_task_state, gold_labels, read_splits, unseen_labels

    task = build_task(config.task)
    notes: list[str] = []
    splits = read_splits(task, config, notes=notes)
    model_path = config.model.name_or_path
    from_checkpoint = is_homofit_checkpoint(model_path)
    tokenizer = load_tokenizer(model_path, config.model)
    if "train" in splits:
        previous = checkpoint_task_state(model_path, config.task.type) if from_checkpoint else None
        task.initialize(splits["train"][1], tokenizer, previous)
    task.build_model(model_path, config.model, tokenizer, from_checkpoint)
    train_inputs = {task.input_text(example) for example in splits["train"][1]} if "train" in splits else set()
    facts = []
    for name, (path, examples) in splits.items():
        features = task.encode(examples, tokenizer, config.data)
        windows = Counter(feature["example_index"] for feature in features)
        cut = {feature["example_index"] for feature in features if any(feature.get(key) for key in TRUNCATION_KEYS)}
        texts = [task.input_text(example) for example in examples]
        seen: set[str] = set()
        duplicates = 0
        for text in texts:
            duplicates += text in seen
            seen.add(text)
        labels = Counter(label for example in examples for label in gold_labels(example))
        facts.append(SplitFacts(
            name, str(path), len(examples), len(features), sum(count > 1 for count in windows.values()), len(cut),
            sum(not text.strip() for text in texts), duplicates, dict(labels.most_common()),
            unseen_labels(task, examples) if name != "train" else {},
            sum(text in train_inputs for text in texts) if name != "train" else 0))
    return DataReport(config.task.type, config.data.max_length, facts, [*notes, *_warnings(facts, config)])


def _warnings(facts: list[SplitFacts], config: Any) -> list[str]:
    warnings = []
    by_name = {split.name: split for split in facts}
    train = by_name.get("train")
    if train is not None and len(train.labels) >= 2:
        counts = sorted(train.labels.values())
        if counts[-1] >= 10 * counts[0]:
            rarest = min(train.labels, key=train.labels.get)
            warnings.append(f"train: labels are imbalanced ({counts[-1]} of the most frequent vs {counts[0]} of "
                            f"'{rarest}'); rare labels are learned late or not at all")
    for split in facts:
        if split.blank:
            warnings.append(f"{split.name}: {split.blank} empty or whitespace-only inputs")
        if split.duplicates:
            warnings.append(f"{split.name}: {split.duplicates} examples repeat an earlier input of the split")
        if split.in_train:
            warnings.append(f"{split.name}: {split.in_train} of {split.examples} inputs also occur in train; its "
                            "scores overstate how the model does on new text")
        if split.unseen_labels:
            shown = ", ".join(f"{label} ({count})" for label, count in split.unseen_labels.items())
            warnings.append(f"{split.name}: labels never seen in train: {shown}")
        longer = split.windowed + split.truncated
        if longer:
            windows = split.inputs - split.examples + split.windowed
            warnings.append(f"{split.name}: {longer} of {split.examples} inputs are longer than data.max_length "
                            f"{config.data.max_length} ({split.windowed} read in {windows} windows, "
                            f"{split.truncated} cut)")
    return warnings


def report_as_json(report: DataReport) -> str:
    return json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n"


def print_report(console: Any, report: DataReport, most_labels: int = 20) -> None:
    from rich.table import Table

    table = Table(title=f"{report.task} data (data.max_length {report.max_length})")
    for column in ("split", "examples", "inputs", "windowed", "cut", "blank", "duplicates", "in train"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split in report.splits:
        table.add_row(split.name, f"{split.examples:,}", f"{split.inputs:,}", str(split.windowed), str(split.truncated),
                      str(split.blank), str(split.duplicates), "-" if split.name == "train" else str(split.in_train))
    console.print(table)
    labels = list(dict.fromkeys(label for split in report.splits for label in split.labels))
    if labels:
        counts = Table(title="labels" + (f" (the {most_labels} most frequent of {len(labels)})"
                                         if len(labels) > most_labels else ""))
        counts.add_column("label")
        for split in report.splits:
            counts.add_column(split.name, justify="right")
        for label in labels[:most_labels]:
            counts.add_row(label, *(str(split.labels.get(label, 0)) for split in report.splits))
        console.print(counts)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if not report.warnings:
        console.print("[green]no problems found[/]")
