"""Every YAML spec homofit ships is valid: the example configs (with their data, where present) and the
starter templates that `homofit init` prints."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from homofit.cli import app
from homofit.config import METHOD_LEARNING_RATES, fine_tuning_method, load_config
from homofit.tasks import task_names

REPO = Path(__file__).parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# Configs whose splits a script in scripts/ cuts from ../shared/data (written under runs/, outside git).
PREPARED_BY = {"semeval2010_task8.yaml": "scripts/split_semeval2010_task8.py", "squad_v1.1.yaml": "scripts/split_squad.py"}
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
TEMPLATES = sorted(entry.name for entry in (resources.files("homofit") / "templates").iterdir()
                   if entry.name.endswith(".yaml"))


def test_there_are_specs_to_check() -> None:
    assert "quickstart.yaml" in [path.name for path in CONFIGS]
    assert "ner.yaml" in TEMPLATES


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_config_loads(config: Path) -> None:
    spec = load_config(config)
    assert spec.data.train is not None
    assert spec.task.type in task_names()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_config_validates_with_its_data(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # data paths in configs/ are relative to the repository root
    spec = load_config(config)
    splits = [path for path in (spec.data.train, spec.data.dev, spec.data.test) if path]
    if not SHARED_DATA.is_dir() and any("shared" in path.parts for path in splits):
        pytest.skip("../shared/data is not beside this checkout")
    if config.name in PREPARED_BY and not all(path.exists() for path in splits):
        subprocess.run([sys.executable, PREPARED_BY[config.name]], cwd=REPO, check=True, capture_output=True)
    missing = [str(path) for path in splits if not path.exists()]
    assert not missing, f"data named by configs/{config.name} is missing: {', '.join(missing)}"
    result = CliRunner().invoke(app, ["validate", str(config.relative_to(REPO))])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"ok: configs/{config.name} is valid")
    assert f"train: {spec.data.train} (" in " ".join(result.output.split())


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_loads(template: str) -> None:
    with resources.as_file(resources.files("homofit") / "templates" / template) as path:
        spec = load_config(path)
    assert spec.task.type == template.removesuffix(".yaml")


@pytest.mark.parametrize("template", TEMPLATES)
def test_init_prints_a_valid_spec(template: str, tmp_path: Path) -> None:
    task = template.removesuffix(".yaml")
    result = CliRunner().invoke(app, ["init", task])
    assert result.exit_code == 0, result.output
    assert result.stdout == (resources.files("homofit") / "templates" / template).read_text(encoding="utf-8")
    written = tmp_path / "my.yaml"
    written.write_text(result.stdout, encoding="utf-8")
    assert load_config(written).task.type == task


GENERATION_TEMPLATES = {"dialogue.yaml", "summarization.yaml", "translation.yaml"}


@pytest.mark.parametrize("method", ["full", "lora", "head_only"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_init_method_writes_the_method_and_its_rate(template: str, method: str, tmp_path: Path) -> None:
    task = template.removesuffix(".yaml")
    result = CliRunner().invoke(app, ["init", task, "--method", method])
    if method == "head_only" and template in GENERATION_TEMPLATES:
        assert result.exit_code == 2
        assert "nothing would train; use full or lora." in result.output
        return
    assert result.exit_code == 0, result.output
    written = tmp_path / "my.yaml"
    written.write_text(result.stdout, encoding="utf-8")
    spec = load_config(written)
    assert spec.task.type == task
    assert fine_tuning_method(spec.model) == method
    assert spec.optim.lr == METHOD_LEARNING_RATES[method]
    assert f"  lr: {METHOD_LEARNING_RATES[method]:.1e}".replace("e-0", "e-") in result.stdout  # written, not implied
