"""`homofit debug-data`: counts, labels, unseen labels, duplicates, overlap, long and blank inputs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_cli import invoke, ok


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("label\tsentence\n" + "".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    return path


def test_debug_data_counts_what_goes_wrong_with_data(tiny_bert: Path, tmp_path: Path) -> None:
    long_text = " ".join(["the film"] * 12)
    train = [("pos", "a fine film"), ("pos", "a fine film"), ("neg", "dull"), ("pos", long_text)] + \
        [("pos", f"good film number {number}") for number in range(16)] + [("neg", "   ")]
    dev = [("pos", "a fine film"), ("neu", "it exists"), ("neg", "a dull one")]
    spec = {
        "task": {"type": "classification"},
        "data": {"train": str(write_tsv(tmp_path / "train.tsv", train)),
                 "dev": str(write_tsv(tmp_path / "dev.tsv", dev)),
                 "header": True, "columns": {"label": "label", "text": "sentence"}, "max_length": 16},
        "model": {"name_or_path": str(tiny_bert)},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    facts = json.loads(ok(invoke("debug-data", tmp_path / "spec.yaml", "--json")).stdout)
    splits = {split["name"]: split for split in facts["splits"]}
    assert splits["train"]["examples"] == 21 and splits["dev"]["examples"] == 3
    assert splits["train"]["labels"] == {"pos": 19, "neg": 2}
    assert splits["train"]["duplicates"] == 1 and splits["train"]["blank"] == 1
    assert splits["train"]["truncated"] == 1  # the long sentence is cut to 16 tokens
    assert splits["dev"]["unseen_labels"] == {"neu": 1} and splits["dev"]["in_train"] == 1
    warnings = " ".join(facts["warnings"])
    assert "labels never seen in train: neu (1)" in warnings and "1 of 3 inputs also occur in train" in warnings
    assert "1 empty or whitespace-only inputs" in warnings and "repeat an earlier input" in warnings

    table = ok(invoke("debug-data", tmp_path / "spec.yaml", "data.max_length=128")).stdout
    assert "examples" in table and "labels" in table and "neu" in table
    assert "longer than data.max_length" not in table  # the override is read: nothing is cut at 128


def test_debug_data_of_clean_data_finds_no_problems(tiny_bert: Path, tmp_path: Path) -> None:
    train = ([("pos", f"good film {number}") for number in range(4)]
             + [("neg", f"bad film {number}") for number in range(4)])
    spec = {"task": {"type": "classification"},
            "data": {"train": str(write_tsv(tmp_path / "train.tsv", train)), "header": True,
                     "columns": {"label": "label", "text": "sentence"}},
            "model": {"name_or_path": str(tiny_bert)}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert "no problems found" in ok(invoke("debug-data", tmp_path / "spec.yaml")).stdout


def test_debug_data_of_a_generation_task_counts_cut_sources(tmp_path: Path) -> None:
    """A generation task's inputs depend on its backbone (a causal LM's prompt), so debug-data builds it."""
    from tasks.test_generation import build_tiny_gpt2

    (tmp_path / "train.en").write_text("A dog runs.\n" + " ".join(["A very long sentence."] * 40) + "\n")
    (tmp_path / "train.de").write_text("Ein Hund rennt.\nEin sehr langer Satz.\n")
    spec = {"task": {"type": "translation"}, "data": {"train": str(tmp_path / "train.en"), "max_length": 32},
            "model": {"name_or_path": str(build_tiny_gpt2(tmp_path / "gpt2"))}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    facts = json.loads(ok(invoke("debug-data", tmp_path / "spec.yaml", "--json")).stdout)
    [train] = facts["splits"]
    assert (train["examples"], train["inputs"], train["truncated"]) == (2, 2, 1)
