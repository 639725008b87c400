"""meta.json names the homofit that ran: its version, and the commit of its source even outside its repo."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from homofit.buildinfo import homofit_commit

REPO = Path(__file__).parent.parent


def repository_head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_an_editable_install_names_its_checkout_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository: the working directory's commit is another matter
    assert homofit_commit() == repository_head()


@pytest.mark.slow
def test_a_built_wheel_carries_the_commit_it_was_built_from(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("homofit-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert json.loads(archive.read("homofit/_build_info.json")) == {"commit": repository_head()}
