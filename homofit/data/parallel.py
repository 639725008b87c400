"""Line-aligned parallel text: `NAME.en` and `NAME.de` (plain or gzip), line i of one translating line i of
the other."""

from __future__ import annotations

from pathlib import Path

from homofit.data.readers import open_text
from homofit.errors import HomofitError
from homofit.textfiles import require_file


def parallel_files(path: Path, source_lang: str, target_lang: str) -> tuple[Path, Path]:
    """The source file as given (`data/train.en.gz`) and its target beside it (`data/train.de.gz`)."""
    require_file(path)
    for suffix in (".gz", ""):
        marker = f".{source_lang}{suffix}"
        if path.name.endswith(marker):
            return path, path.with_name(path.name[: -len(marker)] + f".{target_lang}{suffix}")
    raise HomofitError(f"{path}: line-aligned text is named NAME.{source_lang}[.gz], with NAME.{target_lang}[.gz] "
                       "beside it (task.source_lang / task.target_lang name the suffixes); or give a .jsonl file.")


def read_parallel(source_path: Path, target_path: Path | None) -> list[tuple[int, str, str | None]]:
    """(line number, source, target) for each line; lines blank on both sides are skipped.

    Without a target file the targets are None (text to translate, not to score).
    """
    sources = list(open_text(source_path))
    if target_path is None:
        return [(number, line.strip(), None) for number, line in enumerate(sources, 1) if line.strip()]
    if not target_path.is_file():
        raise HomofitError(f"{target_path}: the target side of {source_path} is missing; both files of a pair "
                           "must sit side by side.")
    targets = list(open_text(target_path))
    if len(sources) != len(targets):
        raise HomofitError(f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; "
                           "the two sides of a parallel pair must be line-aligned.")
    return [(number, source.strip(), target.strip()) for number, (source, target) in enumerate(zip(sources, targets), 1)
            if source.strip() or target.strip()]
