"""Property-based fuzzing of the spec loader and of every reader: random bytes and mutated valid files may
only raise HomofitError (a user error with a message), never anything else. Budgets are small for CI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homofit.config import load_config
from homofit.errors import HomofitError
from homofit.tasks import build_task

DATA = Path(__file__).parent / "data"
FUZZ = settings(max_examples=int(os.environ.get("HOMOFIT_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# family, data keys, a valid sample file of that family, the name the fuzzed copy gets
READERS: list[tuple[str, dict[str, Any], Path, str]] = [
    ("ner", {}, DATA / "ner" / "train.conll", "train.conll"),
    ("ner", {}, None, "train.jsonl"),
    ("classification", {"header": True, "columns": {"label": "label", "text": "sentence"}},
     DATA / "classification" / "sst2_train.tsv", "train.tsv"),
    ("classification", {"columns": {"label": 0, "text": 1}}, None, "train.csv"),
    ("classification", {"columns": {"label": "label", "text": "text"}}, None, "train.jsonl"),
    ("relation", {}, DATA / "relation" / "semeval_train.txt", "train.txt"),
    ("qa", {}, DATA / "qa" / "squad_train.json", "train.json"),
    ("qa", {}, DATA / "qa" / "questions.jsonl", "train.jsonl"),
    ("translation", {}, DATA / "generation" / "multi30k" / "train.en", "train.en"),
    ("translation", {}, None, "train.jsonl"),
    ("summarization", {"columns": {"document": "source", "summary": "target"}},
     DATA / "generation" / "scitldr" / "train.jsonl", "train.jsonl"),
    ("dialogue", {}, DATA / "generation" / "sgd" / "dev" / "dialogues_001.json", "dialogues_001.json"),
    ("dialogue", {}, None, "train.jsonl"),
]
JSONL_SEEDS = {
    "ner": b'{"tokens": ["Ada", "Lovelace"], "tags": ["B-PER", "I-PER"]}\n',
    "classification": b'{"text": "fine", "label": "pos"}\n{"text": "bad", "label": "neg"}\n',
    "translation": b'{"source": "a dog", "target": "ein Hund"}\n',
    "dialogue": b'{"turns": ["hi", "hello"], "response": "how can I help?"}\n',
}


def seed_bytes(family: str, sample: Path | None, name: str) -> bytes:
    if sample is not None:
        return sample.read_bytes()[:4000]
    if name.endswith(".csv"):
        return b"pos,fine\nneg,\"bad, really\"\n"
    return JSONL_SEEDS[family]


@st.composite
def mutated(draw: Any, seed: bytes) -> bytes:
    """The seed file with a few bytes flipped, inserted or deleted, or cut short."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[position]
        else:
            del data[position:]
    return bytes(data)


def read_only_homofit_errors(family: str, data: dict[str, Any], name: str, content: bytes, tokenizer: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        if family == "translation" and name == "train.en":  # line-aligned text needs its other side
            (Path(folder) / "train.de").write_bytes(content[::-1])
        path.write_bytes(content)
        config = load_config(None, [], base={"task": {"type": family}, "data": {**data, "train": str(path)}})
        task = build_task(config.task)
        try:
            examples = task.read(path, config.data)
            if examples:
                task.initialize(examples, tokenizer, None)
        except HomofitError:
            pass


@pytest.mark.parametrize(("family", "data", "sample", "name"), READERS,
                         ids=[f"{family}-{name}" for family, _, _, name in READERS])
def test_reader_raises_only_user_errors(family: str, data: dict[str, Any], sample: Path | None, name: str,
                                        tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    seed = seed_bytes(family, sample, name)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)  # relation adds its markers to it

    @FUZZ
    @given(content=st.one_of(mutated(seed), st.binary(max_size=200)))
    def check(content: bytes) -> None:
        read_only_homofit_errors(family, data, name, content, tokenizer)

    check()


SPEC = (b"task:\n  type: ner\n  scheme: IOB2\ndata:\n  train: train.conll\n  columns: {token: 0, tag: -1}\n"
        b"model:\n  name_or_path: minilm\n  freeze: bottom\n  freeze_layers: 2\noptim:\n  lr: 5.0e-5\n"
        b"train:\n  epochs: 3\n  early_stopping: {metric: f1, patience: 3}\n")


@FUZZ
@given(content=st.one_of(mutated(SPEC), st.binary(max_size=200)),
       overrides=st.lists(st.text(max_size=20), max_size=2))
def test_spec_loader_raises_only_user_errors(content: bytes, overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_bytes(content)
        try:
            load_config(path, overrides)
        except HomofitError:
            pass
