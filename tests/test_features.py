"""Features as flat arrays and the feature cache: the same features, the same run, and tokenization skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_cli import invoke, ok, read_jsonl
from test_train import assert_same_weights, events, write_spec

from homofit.config import load_config
from homofit.features import FeatureTable, TableBuilder
from homofit.tasks import build_task
from homofit.train import pad_batch, read_splits

DATA = Path(__file__).parent / "data"
SPECS: dict[str, dict[str, Any]] = {
    "ner": {"task": {"type": "ner"}, "data": {"train": str(DATA / "ner" / "train.conll"), "max_length": 32,
                                              "stride": 8}},
    "classification": {"task": {"type": "classification"},
                       "data": {"train": str(DATA / "classification" / "sst2_train.tsv"), "format": "tsv",
                                "header": True, "columns": {"label": 0, "text": 1}, "max_length": 16}},
    "qa": {"task": {"type": "qa"}, "data": {"train": str(DATA / "qa" / "squad_train.json"), "max_length": 64,
                                            "stride": 16}},
    "relation": {"task": {"type": "relation"}, "data": {"train": str(DATA / "relation" / "semeval_train.txt")}},
    "translation": {"task": {"type": "translation"},
                    "data": {"train": str(DATA / "generation" / "multi30k" / "train.en"), "max_length": 24}},
}


def encoded(tmp_path: Path, tokenizer_path: Path, spec: dict[str, Any]) -> list[dict[str, Any]]:
    from transformers import AutoTokenizer

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**spec, "model": {"name_or_path": str(tokenizer_path)}}), encoding="utf-8")
    config = load_config(path)
    task = build_task(config.task)
    examples = read_splits(task, config, ("train",))["train"][1]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    task.initialize(examples, tokenizer, None)
    task.build_model(str(tokenizer_path), config.model, tokenizer, from_checkpoint=False)  # generation: the layout
    return task.encode(examples, tokenizer, config.data)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_a_table_gives_back_every_feature_in_memory_and_from_disk(family: str, tiny_bert: Path,
                                                                  tmp_path: Path) -> None:
    features = encoded(tmp_path, tiny_bert, SPECS[family])
    assert len(features) > 10
    table = FeatureTable.of(features)
    assert [table[index] for index in range(len(table))] == features
    table.save(tmp_path / "table")
    loaded = FeatureTable.load(tmp_path / "table")
    assert list(loaded) == features
    assert loaded.lengths().tolist() == [len(feature["input_ids"]) for feature in features]
    objects = [key for key, column in loaded.columns.items() if column["kind"] == "object"]
    assert objects in ([], ["offsets"]), objects  # only QA's character spans (pairs, or None) are pickled
    if family == "ner":
        assert loaded.columns["owned"]["kind"] == "int_tuple" and isinstance(loaded[0]["owned"], tuple)


def test_columns_widen_when_a_later_value_needs_it() -> None:
    features = [{"example_index": 0, "ids": [1, 2], "flag": True, "span": (0, 1)},
                {"example_index": 1, "ids": [None, 3], "flag": False, "extra": 2**40},
                {"example_index": 2, "ids": [], "flag": True, "span": None, "extra": "x"}]
    builder = TableBuilder()
    builder.add(features[:1])
    builder.add(features[1:])
    table = builder.finish()
    assert list(table) == features
    assert {key: column["kind"] for key, column in table.columns.items()} == {
        "example_index": "int", "ids": "optional_ints", "flag": "bool", "span": "object", "extra": "object"}
    assert table[-1] == features[-1]
    with pytest.raises(IndexError):
        table[3]


def test_a_second_run_skips_tokenization_and_trains_the_same(tiny_bert: Path, tmp_path: Path,
                                                              _feature_cache: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"batching": "by_length", "save_every": None})
    runs = [tmp_path / "fresh", tmp_path / "cached"]
    ok(invoke("train", spec, "--run-dir", runs[0]))
    assert len(list((_feature_cache / "features").iterdir())) == 3  # train, dev, test
    ok(invoke("train", spec, "--run-dir", runs[1]))
    fresh_log, cached_log = ((run / "train.log").read_text() for run in runs)
    assert "tokenized train: 48 examples -> 71 inputs" in fresh_log and "feature cache" not in fresh_log
    assert "tokenized train: skipped, 71 inputs of 48 examples read from the feature cache" in cached_log
    assert events(runs[1], "train") == events(runs[0], "train")
    assert events(runs[1], "eval") == events(runs[0], "eval")
    assert_same_weights(runs[1] / "checkpoints" / "best", runs[0] / "checkpoints" / "best")
    for name in ("dev.json", "test.json"):
        assert (runs[1] / "reports" / name).read_text() == (runs[0] / "reports" / name).read_text()


def test_what_changes_encoding_changes_the_key_and_cache_false_writes_nothing(tiny_bert: Path, tmp_path: Path,
                                                                              _feature_cache: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None, "test": None},
                      train={"max_steps": 1, "save_every": None})
    ok(invoke("train", spec, "--run-dir", tmp_path / "a"))
    ok(invoke("train", spec, "data.max_length=48", "--run-dir", tmp_path / "b"))
    assert "feature cache" not in (tmp_path / "b" / "train.log").read_text()
    ok(invoke("train", spec, "task.scheme=IOB2", "--run-dir", tmp_path / "c"))  # the default: same features
    assert "read from the feature cache" in (tmp_path / "c" / "train.log").read_text()
    entries = sorted((_feature_cache / "features").iterdir())
    assert len(entries) == 2
    ok(invoke("train", spec, "data.max_length=40", "data.cache=false", "--run-dir", tmp_path / "d"))
    assert sorted((_feature_cache / "features").iterdir()) == entries
    assert read_jsonl(tmp_path / "d" / "metrics.jsonl")


def test_a_damaged_entry_is_encoded_again(tiny_bert: Path, tmp_path: Path, _feature_cache: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"dev": None, "test": None},
                      train={"max_steps": 1, "save_every": None})
    ok(invoke("train", spec, "--run-dir", tmp_path / "a"))
    [entry] = (_feature_cache / "features").iterdir()
    for path in entry.glob("*.npy"):
        path.write_bytes(b"not numpy")
    ok(invoke("train", spec, "--run-dir", tmp_path / "b"))
    assert "tokenized train: 48 examples -> 71 inputs" in (tmp_path / "b" / "train.log").read_text()
    ok(invoke("train", spec, "--run-dir", tmp_path / "c"))
    assert "read from the feature cache" in (tmp_path / "c" / "train.log").read_text()


def test_padding_to_a_multiple_changes_no_loss(tiny_bert: Path, tmp_path: Path) -> None:
    """pad_to_multiple_of pads with masked positions: the same losses up to float rounding, bounded shapes."""
    runs = {}
    for multiple in (None, 16):
        spec = write_spec(tmp_path / f"spec-{multiple}.yaml", tiny_bert, model={"dropout": 0.0},
                          train={"pad_to_multiple_of": multiple, "max_steps": 4, "save_every": None})
        runs[multiple] = tmp_path / f"run-{multiple}"
        ok(invoke("train", spec, "--run-dir", runs[multiple]))
    losses = {multiple: torch.tensor([event["loss"] for event in events(run, "train")])
              for multiple, run in runs.items()}
    torch.testing.assert_close(losses[16], losses[None], rtol=1e-5, atol=0.0)
    batch = {"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.ones(2, 5, dtype=torch.long),
             "labels": torch.zeros(2, 5, dtype=torch.long), "start_positions": torch.zeros(2, dtype=torch.long)}
    padded = pad_batch(batch, 8, 64, pad_id=0)
    assert padded["input_ids"].shape == (2, 8) and padded["attention_mask"][:, 5:].sum() == 0
    assert (padded["labels"][:, 5:] == -100).all() and padded["start_positions"].shape == (2,)
    assert pad_batch(batch, 8, 6, pad_id=0)["input_ids"].shape == (2, 6)  # never past data.max_length


def test_what_encoding_logged_is_logged_again_from_the_cache(tiny_bert: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Relation examples whose entities are too far apart for max_length 24 are counted while encoding; a
    cached run says the same."""
    path = tmp_path / "spec.yaml"
    spec = {**SPECS["relation"], "model": {"name_or_path": str(tiny_bert)},
            "train": {"max_steps": 1, "device": "cpu", "precision": "fp32"}, "output": {"dir": str(tmp_path / "runs")}}
    spec["data"] = {**spec["data"], "max_length": 24}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    notes = []
    for run in ("fresh", "cached"):
        caplog.clear()
        with caplog.at_level("INFO", logger="homofit"):
            ok(invoke("train", path, "--run-dir", tmp_path / run))
        notes.append([record.getMessage() for record in caplog.records if "further apart" in record.getMessage()])
    assert len(notes[0]) == 1 and notes[1] == notes[0]
    assert "read from the feature cache" in (tmp_path / "cached" / "train.log").read_text()


@pytest.mark.slow
def test_a_compiled_model_trains_what_the_eager_one_does(tiny_bert: Path, tmp_path: Path) -> None:
    """train.compile (torch.compile in place, static shapes, batches padded to a multiple of 32): the same
    losses as the eager model padded the same way, checkpoints with the plain names, and the compile time logged."""
    runs = {}
    for compiled in (False, True):
        spec = write_spec(tmp_path / f"spec-{compiled}.yaml", tiny_bert, model={"dropout": 0.0},
                          train={"compile": compiled, "pad_to_multiple_of": 32, "max_steps": 4, "save_every": None})
        runs[compiled] = tmp_path / f"run-{compiled}"
        ok(invoke("train", spec, "--run-dir", runs[compiled]))
    losses = {compiled: torch.tensor([event["loss"] for event in events(run, "train")])
              for compiled, run in runs.items()}
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=0.0)
    assert "train.compile: the first step took" in (runs[True] / "train.log").read_text()
    names = {compiled: set(load_file(str(run / "checkpoints" / "best" / "model.safetensors")))
             for compiled, run in runs.items()}
    assert names[True] == names[False] and not any("_orig_mod" in name for name in names[True])
