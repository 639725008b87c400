"""Which homofit is running: its version and the commit of its source, wherever it runs from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).parent
BUILD_INFO = PACKAGE / "_build_info.json"


def homofit_commit() -> str | None:
    """The commit homofit's code comes from: the live commit of its checkout for an editable install (so it
    follows the checkout), else the one written into the package when it was built and installed."""
    if (PACKAGE.parent / ".git").exists():
        commit = _git_head(PACKAGE.parent)
        if commit is not None:
            return commit
    try:
        return json.loads(BUILD_INFO.read_text(encoding="utf-8")).get("commit")
    except (OSError, ValueError):
        return None


def _git_head(folder: Path) -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
