"""homofit.data.readers: column files, JSON Lines and format detection, on hand-written files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from homofit.data.readers import detect_format, read_conll_sentences, read_jsonl
from homofit.errors import HomofitError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_conll_tab_separated_sentences_and_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "New York\tB-LOC\nis\tO\n\nHi\tO\n")
    sentences = read_conll_sentences(path)
    assert [sentence.cells for sentence in sentences] == [[["New York", "B-LOC"], ["is", "O"]], [["Hi", "O"]]]
    assert [sentence.lines for sentence in sentences] == [[1, 2], [4]]


def test_conll_space_separated_with_docstart_skipped(tmp_path: Path) -> None:
    text = ("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects  VBZ B-VP O\n\n"
            "-DOCSTART- -X- O O\n\nGerman JJ B-NP B-MISC\n")
    sentences = read_conll_sentences(write(tmp_path / "a.txt", text))
    assert [sentence.cells for sentence in sentences] == [
        [["EU", "NNP", "B-NP", "B-ORG"], ["rejects", "VBZ", "B-VP", "O"]],
        [["German", "JJ", "B-NP", "B-MISC"]],
    ]
    assert [sentence.lines for sentence in sentences] == [[3, 4], [8]]


def test_conll_whitespace_only_separator_lines(tmp_path: Path) -> None:
    # WNUT-17's dev and test files separate sentences with a line holding a lone TAB.
    path = write(tmp_path / "a.conll", "a\tO\n\t\nb\tB-PER\n   \n\n\nc\tO\n\t\n")
    sentences = read_conll_sentences(path)
    assert [sentence.cells for sentence in sentences] == [[["a", "O"]], [["b", "B-PER"]], [["c", "O"]]]
    assert [sentence.lines for sentence in sentences] == [[1], [3], [7]]


def test_conll_crlf_and_trailing_tab(tmp_path: Path) -> None:
    path = tmp_path / "a.conll"
    path.write_bytes(b"a\tO\t\r\nb\tB-PER\r\n\r\n")
    assert [sentence.cells for sentence in read_conll_sentences(path)] == [[["a", "O"], ["b", "B-PER"]]]


def test_conll_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.conll.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("Köln\tB-LOC\n\nx\tO\n")
    assert [sentence.cells for sentence in read_conll_sentences(path)] == [[["Köln", "B-LOC"]], [["x", "O"]]]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.conll"
    with pytest.raises(HomofitError) as error:
        read_conll_sentences(path)
    assert str(error.value) == f"{path}: data file not found (paths are relative to the current directory)."


def test_jsonl_records_with_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n\n{"tokens": [], "tags": []}\n')
    assert read_jsonl(path) == [(1, {"tokens": ["a"], "tags": ["O"]}), (3, {"tokens": [], "tags": []})]


def test_jsonl_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"tokens": ["a"]}\n')
    assert read_jsonl(path) == [(1, {"tokens": ["a"]})]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"tokens": []}\n{"tokens": [}\n', "2: not valid JSON (Expecting value)."),
        ('{"tokens": []}\n\n["a", "b"]\n', "3: each line must be a JSON object."),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "a.jsonl", text)
    with pytest.raises(HomofitError) as error:
        read_jsonl(path)
    assert str(error.value) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("a.conll", "auto", "conll"),
        ("a.conll.gz", "auto", "conll"),
        ("a.JSONL", "auto", "jsonl"),
        ("a.jsonl.gz", "auto", "jsonl"),
        ("emerging.test.annotated", "auto", "conll"),
        ("wnut17train", "auto", "conll"),
        ("a.txt", "auto", "conll"),
        ("a.tsv", "auto", "tsv"),
        ("a.parquet", "auto", "unknown"),
        ("a.txt", "jsonl", "jsonl"),
    ],
)
def test_detect_format(name: str, declared: str, expected: str) -> None:
    assert detect_format(Path(name), declared) == expected


@pytest.mark.parametrize("name", ["eng.train", "eng.testa", "eng.testb", "train.iob", "dev.bio", "x.conll", "t.txt",
                                  "train"])
def test_conll_is_recognised_by_the_usual_names(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text("EU B-ORG\nrejects O\n", encoding="utf-8")
    assert detect_format(path, "auto") == "conll"


def test_format_is_read_off_the_content_when_the_name_tells_nothing(tmp_path: Path) -> None:
    conll, jsonl, prose = tmp_path / "a.data", tmp_path / "b.data", tmp_path / "c.data"
    conll.write_text("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n")
    jsonl.write_text('{"tokens": ["a"], "tags": ["O"]}\n')
    prose.write_text("A sentence with words.\nAnother one here.\n")
    assert [detect_format(path, "auto") for path in (conll, jsonl, prose)] == ["conll", "jsonl", "unknown"]
    assert detect_format(prose, "tsv") == "tsv"


def test_ner_reads_a_conll_2003_name_and_names_the_choices_otherwise(tmp_path: Path) -> None:
    from homofit.config import DataConfig
    from homofit.tasks.ner import NerConfig, NerTask

    path = tmp_path / "eng.testb"
    path.write_text("EU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\n", encoding="utf-8")
    task = NerTask(NerConfig(), {})
    assert [example.tags for example in task.read(path, DataConfig())] == [["B-ORG", "O"], ["B-PER"]]
    prose = tmp_path / "notes.md"
    prose.write_text("Some notes.\n")
    with pytest.raises(HomofitError, match="set data.format to one of them") as error:
        task.read(prose, DataConfig())
    assert "ner reads conll, jsonl" in str(error.value)
