"""Encoded features as flat integer arrays: built chunk by chunk, cached on disk, read back memory-mapped.

A task's `encode` returns a list of dicts; a `FeatureTable` holds the same data column by column (one array
of values and one of offsets for a list-valued key), so a million training inputs are a few arrays instead of
millions of Python lists, and `table[i]` gives back a dict equal to the one `encode` made. A cached table
lives in `HOMOFIT_CACHE_DIR` (default `~/.cache/homofit`) under `features/KEY`, where KEY hashes everything
that changes encoding: the data file, the tokenizer, the task and data sections of the spec, the labels and
the versions of homofit and the tokenizer libraries.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1  # bump when the layout on disk changes
NONE = np.iinfo(np.int64).min  # stands for None in a list of optional integers

# Column kinds: int (one integer per feature), bool, ints (a list of integers), optional_ints (a list of
# integers and None), int_tuple (a tuple of integers), object (anything else, pickled).
_INT, _BOOL, _INTS, _OPTIONAL, _TUPLE, _OBJECT = "int", "bool", "ints", "optional_ints", "int_tuple", "object"
_RAGGED = (_INTS, _OPTIONAL, _TUPLE)


def _kind_of(value: Any) -> str:
    if type(value) is bool:
        return _BOOL
    if type(value) is int:
        return _INT
    if type(value) is list and all(type(item) is int for item in value):
        return _INTS
    if type(value) is list and all(item is None or type(item) is int for item in value):
        return _OPTIONAL
    if type(value) is tuple and all(type(item) is int for item in value):
        return _TUPLE
    return _OBJECT


class _ColumnBuilder:
    """One key's values, appended feature by feature into flat 64-bit arrays (8 bytes an integer, not a
    Python object each); falls back to a wider kind when a value needs it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.values: Any = [] if kind == _OBJECT else array("q")  # flat integers, or the objects themselves
        self.offsets = array("q", [0])
        self.present = array("b")

    def add(self, value: Any) -> None:
        if self.kind != _OBJECT:
            kind = _kind_of(value)
            if kind != self.kind:
                self._widen(kind)
        self.present.append(1)
        if self.kind in _RAGGED:
            self.values.extend(NONE if item is None else item for item in value)
            self.offsets.append(len(self.values))
        elif self.kind == _OBJECT:
            self.values.append(value)
        else:
            self.values.append(int(value))

    def skip(self) -> None:
        self.present.append(0)
        if self.kind in _RAGGED:
            self.offsets.append(len(self.values))
        else:
            self.values.append(None if self.kind == _OBJECT else 0)

    def _widen(self, kind: str) -> None:
        if {self.kind, kind} <= {_INTS, _OPTIONAL}:
            self.kind = _OPTIONAL  # the flat values stay; None is stored as NONE from now on
            return
        rows = list(self._rows())
        self.kind, self.values, self.offsets = _OBJECT, rows, array("q", [0])

    def _rows(self) -> Iterator[Any]:
        for number, present in enumerate(self.present):
            if not present:
                yield None
            elif self.kind in _RAGGED:
                items = self.values[self.offsets[number] : self.offsets[number + 1]].tolist()
                yield _row(items, self.kind)
            else:
                yield bool(self.values[number]) if self.kind == _BOOL else self.values[number]

    def finish(self) -> dict[str, Any]:
        present = np.frombuffer(self.present, dtype=np.int8).astype(bool)
        column: dict[str, Any] = {"kind": self.kind, "present": None if present.all() else present}
        if self.kind == _OBJECT:
            column["items"] = self.values
        elif self.kind in _RAGGED:
            column["values"] = _narrow(np.frombuffer(self.values, dtype=np.int64), keep_none=self.kind == _OPTIONAL)
            column["offsets"] = np.frombuffer(self.offsets, dtype=np.int64).copy()
        else:
            values = np.frombuffer(self.values, dtype=np.int64)
            column["values"] = values.astype(bool) if self.kind == _BOOL else values.copy()
        return column


def _row(items: list[int], kind: str) -> Any:
    if kind == _OPTIONAL:
        return [None if item == NONE else item for item in items]
    return tuple(items) if kind == _TUPLE else items


def _narrow(values: np.ndarray, keep_none: bool) -> np.ndarray:
    """int32 where the values fit (token ids, labels, positions), else int64."""
    if keep_none or not len(values):
        return values.copy()
    info = np.iinfo(np.int32)
    return values.astype(np.int32) if info.min <= values.min() and values.max() <= info.max else values.copy()


class TableBuilder:
    """Collects `encode`'s features chunk by chunk, without keeping the dicts."""

    def __init__(self) -> None:
        self.columns: dict[str, _ColumnBuilder] = {}
        self.count = 0

    def add(self, features: list[dict[str, Any]]) -> None:
        for feature in features:
            for key, value in feature.items():
                if key not in self.columns:
                    column = self.columns[key] = _ColumnBuilder(_kind_of(value))
                    for _ in range(self.count):
                        column.skip()
            for key, column in self.columns.items():
                if key in feature:
                    column.add(feature[key])
                else:
                    column.skip()
            self.count += 1

    def finish(self) -> FeatureTable:
        return FeatureTable(self.count, {key: column.finish() for key, column in self.columns.items()})


class FeatureTable(Sequence):
    """`encode`'s features, column by column; `table[i]` is a dict equal to the i-th feature."""

    def __init__(self, count: int, columns: dict[str, dict[str, Any]],
                 notes: list[tuple[int, str]] | None = None) -> None:
        self.count, self.columns = count, columns
        self.notes = notes or []  # (log level, message) that encoding logged, replayed on a cache hit

    @classmethod
    def of(cls, features: list[dict[str, Any]]) -> FeatureTable:
        builder = TableBuilder()
        builder.add(features)
        return builder.finish()

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if not -self.count <= index < self.count:
            raise IndexError(index)
        index %= self.count
        feature: dict[str, Any] = {}
        for key, column in self.columns.items():
            present = column["present"]
            if present is not None and not present[index]:
                continue
            kind = column["kind"]
            if kind == _OBJECT:
                feature[key] = column["items"][index]
            elif kind == _INT:
                feature[key] = int(column["values"][index])
            elif kind == _BOOL:
                feature[key] = bool(column["values"][index])
            else:
                offsets = column["offsets"]
                feature[key] = _row(column["values"][offsets[index] : offsets[index + 1]].tolist(), kind)
        return feature

    def lengths(self, key: str = "input_ids") -> np.ndarray:
        """The length of every feature's list `key`, from the offsets alone."""
        column = self.columns[key]
        if column["kind"] in _RAGGED:
            return np.diff(column["offsets"])
        return np.array([len(self[index][key]) for index in range(self.count)])

    # -- on disk -------------------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        layout: dict[str, Any] = {"format": FORMAT, "count": self.count, "notes": self.notes, "columns": {}}
        for number, (key, column) in enumerate(self.columns.items()):
            entry = {"kind": column["kind"], "file": f"c{number}"}
            for name in ("values", "offsets", "present"):
                if isinstance(column.get(name), np.ndarray):
                    np.save(folder / f"c{number}.{name}.npy", column[name])
                    entry[name] = True
            if column["kind"] == _OBJECT:
                with open(folder / f"c{number}.items.pkl", "wb") as handle:
                    pickle.dump(column["items"], handle, protocol=pickle.HIGHEST_PROTOCOL)
            layout["columns"][key] = entry
        (folder / "table.json").write_text(json.dumps(layout, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> FeatureTable:
        layout = json.loads((folder / "table.json").read_text(encoding="utf-8"))
        if layout.get("format") != FORMAT:
            raise ValueError(f"{folder}: feature table format {layout.get('format')}, not {FORMAT}")
        columns: dict[str, dict[str, Any]] = {}
        for key, entry in layout["columns"].items():
            column: dict[str, Any] = {"kind": entry["kind"], "present": None}
            for name in ("values", "offsets", "present"):
                if entry.get(name):
                    column[name] = np.load(folder / f"{entry['file']}.{name}.npy", mmap_mode="r")
            if entry["kind"] == _OBJECT:
                with open(folder / f"{entry['file']}.items.pkl", "rb") as handle:
                    column["items"] = pickle.load(handle)  # written by this module, in the user's cache
            columns[key] = column
        return cls(layout["count"], columns, [tuple(note) for note in layout.get("notes", [])])


# -- the cache ---------------------------------------------------------------------------------------------


def cache_root() -> Path:
    explicit = os.environ.get("HOMOFIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "homofit"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of the tokenizer as it encodes: its saved files (vocabulary, merges, added tokens, settings),
    without the folder it was loaded from."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        for path in sorted(Path(folder).iterdir()):
            data = path.read_bytes()
            if path.name == "tokenizer_config.json":
                settings = json.loads(data)
                settings.pop("name_or_path", None)
                data = json.dumps(settings, sort_keys=True).encode()
            digest.update(path.name.encode() + b"\0" + data)
    return digest.hexdigest()


def cache_key(*, data_hash: str, split: str, tokenizer_hash: str, task_section: dict[str, Any],
              data_section: dict[str, Any], task_state: dict[str, Any]) -> str:
    """Everything `encode` reads, hashed: the file, which of its examples the split keeps (the data section:
    max_*_samples, dev_split and its seed, skip_empty_targets), how they are read and cut (format, columns,
    max_length, stride), the task's settings and state (labels, added tokens) and the tokenizer."""
    import tokenizers
    import transformers

    from homofit import __version__

    data_section = {key: value for key, value in data_section.items() if key not in ("train", "dev", "test", "cache")}
    material = {"format": FORMAT, "homofit": __version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__, "data": data_hash, "split": split, "tokenizer": tokenizer_hash,
                "task": task_section, "data_section": data_section, "task_state": task_state}
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_cached(key: str) -> FeatureTable | None:
    folder = cache_root() / "features" / key
    if not (folder / "table.json").is_file():
        return None
    try:
        return FeatureTable.load(folder)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, json.JSONDecodeError):
        return None  # a damaged or older entry: encode again and replace it


def store(key: str, table: FeatureTable) -> FeatureTable:
    """Write `table` under `key` (atomically: a whole folder is renamed into place) and return it read back
    memory-mapped; when the cache cannot be written, the table in memory."""
    root = cache_root() / "features"
    final = root / key
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        table.save(staging / "table")
        if final.exists():  # damaged (load_cached refused it) or written by another process just now
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(staging / "table", final)
        except OSError:  # another process renamed its copy first
            pass
        shutil.rmtree(staging, ignore_errors=True)
        return FeatureTable.load(final)
    except OSError:
        return table
