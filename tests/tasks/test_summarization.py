"""homofit.tasks.summarization: documents as text or sentence lists, several references, predict input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from homofit.config import DataConfig
from homofit.errors import HomofitError
from homofit.tasks.summarization import SummarizationConfig, SummarizationTask

DATA = Path(__file__).parent.parent / "data" / "generation" / "scitldr"
SCITLDR = DataConfig(columns={"document": "source", "summary": "target"})


def task() -> SummarizationTask:
    return SummarizationTask(SummarizationConfig(), {})


def test_reads_scitldr_sentences_joined_and_every_reference() -> None:
    examples = task().read(DATA / "dev.jsonl", SCITLDR)
    first = json.loads((DATA / "dev.jsonl").read_text().splitlines()[0])
    assert len(examples) == 6
    assert examples[0].document == " ".join(first["source"])
    assert examples[0].references == first["target"] and len(first["target"]) > 1


def test_plain_fields_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"document": "Long text.", "summary": "Short."}) + "\n"
                    + json.dumps({"document": "Other text.", "summary": []}) + "\n")
    with pytest.raises(HomofitError, match=r"docs.jsonl:2: 'summary' must be a summary or a non-empty list"):
        task().read(path, DataConfig())
    path.write_text(json.dumps({"document": 3, "summary": "x"}) + "\n")
    with pytest.raises(HomofitError, match=r"docs.jsonl:1: 'document' must be a string or a list of sentences"):
        task().read(path, DataConfig())
    with pytest.raises(HomofitError, match="summarization reads JSONL"):
        task().read(tmp_path / "docs.txt", DataConfig())


def test_predict_input_takes_long_raw_text_and_jsonl_without_summaries(tmp_path: Path) -> None:
    document = "We study things. " * 40
    [raw] = task().read_predict_input(document, DataConfig())
    assert raw.document == document.strip() and raw.references == []
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"source": ["A.", "B."]}) + "\n")
    [example] = task().read_predict_input(str(path), SCITLDR)
    assert (example.document, example.references) == ("A. B.", [])
