"""Build hook: the installed package records the commit it was built from (homofit/_build_info.json), so a run's
meta.json names homofit's source even when homofit runs outside its repository. Everything else is in
pyproject.toml."""

import json
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def source_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=10, check=False)
    except OSError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "homofit" / "_build_info.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"commit": source_commit()}) + "\n", encoding="utf-8")


setup(cmdclass={"build_py": BuildPyWithCommit})
