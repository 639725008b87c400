"""The one place homofit reads a text file: gzip or plain, UTF-8 with or without a byte-order mark. A file in
another encoding is an error that names the line, the byte offset and how to convert the file."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from homofit.errors import HomofitError

BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def input_path(path_or_text: str) -> Path | None:
    """The file or folder a command-line input names, or None when it is raw text (which may be too long,
    or too odd, to be a file name at all)."""
    try:
        path = Path(path_or_text)
        return path if path.exists() else None
    except (OSError, ValueError):
        return None


def require_file(path: Path, what: str = "data file") -> None:
    """Raise the error every reader gives for a data path that is missing, or a folder where a file is meant."""
    if path.is_dir():
        raise HomofitError(f"{path}: is a folder; name a {what}.")
    if not path.exists():
        raise HomofitError(f"{path}: {what} not found (paths are relative to the current directory).")


def read_bytes(path: Path, what: str = "data file") -> bytes:
    """The file's bytes, unpacked when its name ends in .gz."""
    require_file(path, what)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise HomofitError(f"{path}: not a complete gzip file ({error}); unpack it and check it, or drop the "
                           ".gz suffix if it is plain text.") from None
    except PermissionError:
        raise HomofitError(f"{path}: permission denied; make the {what} readable (chmod u+r).") from None
    except OSError as error:
        raise HomofitError(f"{path}: cannot read it ({error.strerror or error}).") from None


def decode(data: bytes, path: Path | str) -> str:
    """UTF-8 text without a leading byte-order mark; anything else names where it stops being UTF-8."""
    for bom, name in BOMS.items():
        if data.startswith(bom):
            raise HomofitError(f"{path}: the file is {name}, not UTF-8; convert it, e.g. "
                               f"`iconv -f {name} -t UTF-8 {path} > converted{Path(str(path)).suffix}`.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        byte = data[error.start]
        guess = "Latin-1 (ISO-8859-1) or Windows-1252" if byte >= 0x80 else "not text"
        raise HomofitError(
            f"{path}:{line}: not UTF-8 (byte 0x{byte:02x} at byte offset {error.start}, column {column}; the file "
            f"looks like {guess}); convert it, e.g. `iconv -f latin1 -t utf-8 {path} > "
            f"converted{Path(str(path)).suffix}`.") from None
    return text.removeprefix("\ufeff")


def read_text(path: Path, what: str = "data file") -> str:
    """The whole file as text (UTF-8, BOM dropped, gzip unpacked); line ends as they are in the file."""
    return decode(read_bytes(path, what), path)


def text_lines(path: Path, what: str = "data file") -> Iterator[str]:
    """The file's lines without their line ends (LF, CRLF or CR)."""
    for line in io.StringIO(read_text(path, what), newline=None):
        yield line.rstrip("\n")
