"""Task-agnostic readers. Each reports a malformed record with its file and line number."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homofit.errors import HomofitError
from homofit.textfiles import text_lines


@dataclass
class TokenRow:
    """One sentence of a column file: the cells of each token and the line each token is on."""

    cells: list[list[str]]
    lines: list[int]


def open_text(path: Path) -> Iterator[str]:
    """Lines of a text file, gzip or plain, without their line ends; UTF-8, a byte-order mark dropped."""
    return text_lines(path)


def read_conll_sentences(path: Path) -> list[TokenRow]:
    """Sentences of a CoNLL column file: tab or space separated, blank lines between sentences,
    `-DOCSTART-` lines skipped."""
    sentences: list[TokenRow] = []
    current = TokenRow([], [])
    for line_number, line in enumerate(open_text(path), start=1):
        if not line.strip():
            if current.cells:
                sentences.append(current)
            current = TokenRow([], [])
            continue
        line = line.rstrip()  # a trailing tab or space is not an empty last column
        cells = line.split("\t") if "\t" in line else line.split()
        cells = [cell.strip() for cell in cells]
        if cells[0].startswith("-DOCSTART-"):
            continue
        current.cells.append(cells)
        current.lines.append(line_number)
    if current.cells:
        sentences.append(current)
    return sentences


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line of a JSON Lines file."""
    records = []
    for line_number, line in enumerate(open_text(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise HomofitError(f"{path}:{line_number}: not valid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise HomofitError(f"{path}:{line_number}: each line must be a JSON object.")
        records.append((line_number, record))
    return records


CONLL_SUFFIXES = {".conll", ".conll03", ".iob", ".iob2", ".bio", ".bioes", ".train", ".testa", ".testb", ".annotated",
                  ".txt", ""}
FORMATS = ("conll", "jsonl", "json", "csv", "tsv")
TAG_PATTERN = re.compile(r"^(O|[BIESLU]-\S+|[BIESLU])$")


def detect_format(path: Path, declared: str) -> str:
    """The file's format: the declared one; with 'auto', the one its extension names (CoNLL also under the
    usual names of CoNLL-2003 and its kin: .train, .testa, .testb, .iob, .bio, ...), else the one its first
    lines look like; 'unknown' when neither tells."""
    if declared != "auto":
        return declared
    suffixes = [suffix for suffix in path.suffixes if suffix != ".gz"]
    suffix = suffixes[-1].lower() if suffixes else ""
    by_suffix = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix in CONLL_SUFFIXES:
        return "conll"
    return sniff_format(path)


def sniff_format(path: Path, lines: int = 50) -> str:
    """jsonl when the first line is a JSON object, conll when most lines are `token ... tag` rows, else unknown."""
    if not path.is_file():
        return "unknown"
    sample = []
    try:
        for line in open_text(path):
            if line.strip():
                sample.append(line.strip())
            if len(sample) >= lines:
                break
    except (UnicodeDecodeError, OSError, EOFError):
        return "unknown"
    if not sample:
        return "unknown"
    try:
        if isinstance(json.loads(sample[0]), dict):
            return "jsonl"
    except json.JSONDecodeError:
        pass
    rows = [line.split("\t") if "\t" in line else line.split() for line in sample]
    tagged = sum(len(cells) >= 2 and bool(TAG_PATTERN.match(cells[-1])) for cells in rows)
    return "conll" if tagged >= 0.8 * len(rows) else "unknown"


def unknown_format(path: Path, task: str, choices: tuple[str, ...]) -> HomofitError:
    """The error for a file whose format neither its name nor its content tells."""
    return HomofitError(f"{path}: cannot tell its format from the name or the first lines; {task} reads "
                        f"{', '.join(choices)}: set data.format to one of them.")


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The character span without leading or trailing white space (tokens never cover white space)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def jsonl_fields(columns: dict[str, int | str], fields: tuple[str, ...], task: str) -> dict[str, str]:
    """The JSONL field that holds each of `fields` (data.columns may rename them); another key is an error."""
    unknown = set(columns) - set(fields)
    if unknown:
        raise HomofitError(f"data.columns: unknown key(s) {sorted(unknown)} for {task}; use {' and '.join(fields)}.")
    return {field: str(columns.get(field, field)) for field in fields}
