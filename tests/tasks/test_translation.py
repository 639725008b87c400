"""homofit.tasks.translation: JSONL and line-aligned (plain or gzip) pairs, predict input, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from homofit.config import DataConfig
from homofit.errors import HomofitError
from homofit.tasks.translation import TranslationConfig, TranslationTask

DATA = Path(__file__).parent.parent / "data" / "generation" / "multi30k"


def task(**config: object) -> TranslationTask:
    return TranslationTask(TranslationConfig(**config), {})


def test_reads_the_shipped_multi30k_pair_plain_and_gzip() -> None:
    train = task().read(DATA / "train.en", DataConfig())
    dev = task().read(DATA / "val.en.gz", DataConfig())
    assert len(train) == 40 and len(dev) == 10
    assert train[0].source == "Two young, White males are outside near many bushes."
    assert train[0].references == ["Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."]
    assert train[0].origin == f"{DATA / 'train.en'}:1"
    assert dev[1].references == ["Ein Mann schläft in einem grünen Raum auf einem Sofa."]


def test_the_language_pair_picks_the_target_file(tmp_path: Path) -> None:
    (tmp_path / "a.de").write_text("Hund\n")
    (tmp_path / "a.fr").write_text("chien\n")
    [example] = task(source_lang="de", target_lang="fr").read(tmp_path / "a.de", DataConfig())
    assert (example.source, example.references) == ("Hund", ["chien"])


def test_misaligned_or_missing_sides_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "a.en").write_text("one\ntwo\n")
    with pytest.raises(HomofitError, match="a.de: the target side of .*a.en is missing"):
        task().read(tmp_path / "a.en", DataConfig())
    (tmp_path / "a.de").write_text("eins\n")
    with pytest.raises(HomofitError, match="has 2 lines but .*a.de has 1"):
        task().read(tmp_path / "a.en", DataConfig())
    (tmp_path / "a.txt").write_text("one\n")
    with pytest.raises(HomofitError, match=r"named NAME\.en\[\.gz\]"):
        task().read(tmp_path / "a.txt", DataConfig())


def test_jsonl_with_columns_and_several_references(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"en": "A dog.", "de": ["Ein Hund.", "Hund."]}) + "\n\n"
                    + json.dumps({"en": "A cat.", "de": "Eine Katze."}) + "\n")
    examples = task().read(path, DataConfig(columns={"source": "en", "target": "de"}))
    assert [(e.source, e.references, e.origin) for e in examples] == [
        ("A dog.", ["Ein Hund.", "Hund."], f"{path}:1"), ("A cat.", ["Eine Katze."], f"{path}:3")]
    with pytest.raises(HomofitError, match=r"pairs.jsonl:1: no text field 'source'; set data.columns.source"):
        task().read(path, DataConfig())
    with pytest.raises(HomofitError, match="unknown key"):
        task().read(path, DataConfig(columns={"src": "en"}))


def test_predict_input_raw_text_a_text_file_or_jsonl_without_targets(tmp_path: Path) -> None:
    raw = task().read_predict_input("A dog.\n\nA cat.", DataConfig())
    assert [(e.source, e.references, e.origin) for e in raw] == [("A dog.", [], "line 1"), ("A cat.", [], "line 3")]
    text_file = tmp_path / "in.txt"
    text_file.write_text("A bird.\n")
    assert [e.source for e in task().read_predict_input(str(text_file), DataConfig())] == ["A bird."]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps({"source": "A fish."}) + "\n")
    [example] = task().read_predict_input(str(jsonl), DataConfig())
    assert (example.source, example.references) == ("A fish.", [])
    assert task().read_predict_input("x" * 300, DataConfig())[0].source == "x" * 300  # too long to be a file name
