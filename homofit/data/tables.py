"""Records of text data: CSV, TSV and JSON Lines, with the fields a task wants picked out by name or index.

A task names what it needs (`text`, `label`, ...) and where each one is (`data.columns`): a column name
(CSV/TSV with a header row, or a JSONL field) or a column index (CSV/TSV, with or without a header).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homofit.data.readers import read_jsonl
from homofit.errors import HomofitError
from homofit.textfiles import read_text

DELIMITERS = {"csv": ",", "tsv": "\t"}


@dataclass
class Record:
    """One record's fields, keyed as the task named them; a field the file lacks is absent."""

    fields: dict[str, Any]
    line: int
    source: str


def read_records(path: Path, file_format: str, columns: dict[str, int | str], required: set[str],
                 header: bool | None = None) -> list[Record]:
    """Pick the fields in `columns` (key -> column name or index) out of every record of a CSV, TSV or JSONL file.

    `header` None means: the first row of a CSV/TSV file names its columns when any column is chosen by name.
    Raises HomofitError naming the file, the line and the `data.columns` key when a required field is missing;
    an optional field is left out of the records that lack it.
    """
    if file_format == "jsonl":
        return _pick_from_jsonl(path, columns, required)
    if file_format not in DELIMITERS:
        raise HomofitError(f"{path}: expected CSV, TSV or JSONL, not '{file_format}'; set data.format.")
    if header is None:
        header = any(isinstance(column, str) for column in columns.values())
    return _pick_from_table(path, DELIMITERS[file_format], columns, required, header)


def read_table(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) for each non-blank row; quoted cells may hold delimiters, quotes and line breaks.

    Line ends may be LF or CRLF; a UTF-8 byte-order mark is dropped.
    """
    with io.StringIO(read_text(path), newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        last_line = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise HomofitError(f"{path}:{last_line + 1}: malformed {_format_name(delimiter)} ({error}); "
                                   "a quote that opens a cell must close it, "
                                   "and quotes inside one are doubled.") from None
            first_line, last_line = last_line + 1, reader.line_num
            if any(cell.strip() for cell in cells):
                yield first_line, cells


def _pick_from_table(path: Path, delimiter: str, columns: dict[str, int | str], required: set[str],
                     header: bool) -> list[Record]:
    rows = read_table(path, delimiter)
    index_of: dict[str, int] = {}
    if header:
        first = next(rows, None)
        if first is None:
            return []
        names = [name.strip() for name in first[1]]
        for key, column in columns.items():
            if isinstance(column, str) and (column in names or key in required):
                if column not in names:
                    raise HomofitError(f"data.columns.{key}: no column '{column}' in the header of {path} "
                                       f"({', '.join(names)}).")
                index_of[key] = names.index(column)
    for key, column in columns.items():
        if isinstance(column, str) and not header:
            raise HomofitError(f"data.columns.{key}: '{column}' names a column, but {path} is read without a header "
                               f"(data.header: false); choose the column by index (0 = first, -1 = last).")
        if isinstance(column, int):
            index_of[key] = column
    records = []
    for line, cells in rows:
        fields, taken = {}, {}
        for key, index in index_of.items():
            cell = index + len(cells) if index < 0 else index
            # two different columns that meet in one cell (0 and -1 of a one-cell row) mean a short row
            clash = taken.get(cell) not in (None, index)
            if 0 <= cell < len(cells) and not clash:
                fields[key] = cells[cell].strip()
                taken[cell] = index
            elif key in required:
                raise HomofitError(f"{path}:{line}: no column {columns[key]!r} for data.columns.{key}; the row has "
                                   f"{len(cells)} cell(s): {cells!r}.")
        records.append(Record(fields, line, f"{path}:{line}"))
    return records


def _pick_from_jsonl(path: Path, columns: dict[str, int | str], required: set[str]) -> list[Record]:
    for key, column in columns.items():
        if not isinstance(column, str):
            raise HomofitError(f"data.columns.{key}: JSONL fields are chosen by name, got the index {column}.")
    records = []
    for line, record in read_jsonl(path):
        fields = {}
        for key, name in columns.items():
            if name in record and record[name] is not None:
                fields[key] = record[name]
            elif key in required:
                raise HomofitError(f"{path}:{line}: no '{name}' field; "
                                   f"set data.columns.{key} to the field that holds it.")
        records.append(Record(fields, line, f"{path}:{line}"))
    return records


def _format_name(delimiter: str) -> str:
    return "TSV" if delimiter == "\t" else "CSV"
