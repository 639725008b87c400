"""The starter specs `homofit init` prints: one commented template a task family, set up for a way of
fine-tuning (full, LoRA or head only) with that method's learning rate."""

from __future__ import annotations

import re
from importlib import resources

import yaml

from homofit.config import METHOD_LEARNING_RATES
from homofit.errors import HomofitError

METHOD_LINES = {
    "full": None,
    "lora": "  lora: {r: 8, alpha: 16, dropout: 0.05}   # adapters on peft's default modules; the head trains whole",
    "head_only": "  freeze: all_but_head      # only the task head (and the pooler it reads) trains",
}
LR_LINE = re.compile(r"^  lr: .*$", re.MULTILINE)
FREEZE_LINE = re.compile(r"^  freeze: .*$\n", re.MULTILINE)
MODEL_NAME_LINE = re.compile(r"^(model:\n  name_or_path: .*$\n)", re.MULTILINE)


def template_names() -> list[str]:
    folder = resources.files("homofit") / "templates"
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def starter_spec(task: str, method: str = "full") -> str:
    """The template for `task`; for lora or head_only the model section says so and optim.lr is that
    method's rate (README: "Learning rates that fit the method")."""
    task = task.strip().lower()
    if task not in template_names():
        raise HomofitError(f"no starter spec for task '{task}'; choose one of {', '.join(template_names())}.")
    method = {"head": "head_only"}.get(method, method)
    if method not in METHOD_LINES:
        raise HomofitError(f"--method {method}: choose full, lora or head_only.")
    text = (resources.files("homofit") / "templates" / f"{task}.yaml").read_text(encoding="utf-8")
    if method == "full":
        return text
    if method == "head_only" and "backbone" in (yaml.safe_load(text)["task"]):
        raise HomofitError(f"--method head_only: a {task} model's output layer is its decoder, tied to the frozen "
                           "embeddings, so nothing would train; use full or lora.")
    text = FREEZE_LINE.sub("", text)
    text = MODEL_NAME_LINE.sub(lambda match: match.group(1) + METHOD_LINES[method] + "\n", text, count=1)
    rate = f"{METHOD_LEARNING_RATES[method]:.1e}".replace("e-0", "e-")
    line = f"  lr: {rate}".ljust(28) + f"# {method}'s default rate (full fine-tuning: 5.0e-5)"
    return LR_LINE.sub(line, text, count=1)
