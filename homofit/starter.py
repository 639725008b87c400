"""The starter specs `homofit init` prints, rendered from the spec schema and each task family's `starter`
values, so they cannot drift from what `load_config` accepts: every key of the task section and the commonly
tuned keys of the others, each with its description as a comment, set up for a way of fine-tuning (full,
LoRA or head only) with that method's learning rate."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import types
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from homofit.config import METHOD_LEARNING_RATES, DataConfig, ModelConfig, OptimConfig, OutputConfig, TrainConfig
from homofit.errors import HomofitError

LINE_WIDTH = 120
COMMENT_COLUMN = 28
NARROWEST_TRAILING_COMMENT = 40  # below this, a comment goes on the lines above its key

# The sections after `task`, and the keys of each that a starter spec shows besides the task's own `starter`
# values: the ones most runs tune. Every other key keeps its default and is documented in the README.
SECTIONS: dict[str, tuple[type[BaseModel], tuple[str, ...]]] = {
    "data": (DataConfig, ("train", "dev", "test", "max_length")),
    "model": (ModelConfig, ("name_or_path", "freeze")),
    "optim": (OptimConfig, ("name", "lr", "weight_decay", "schedule", "warmup_ratio")),
    "train": (TrainConfig, ("epochs", "batch_size", "eval_every", "early_stopping", "seed")),
    "output": (OutputConfig, ("dir",)),
}
# What every starter spec suggests beside the schema's defaults (a task's `starter` wins): the weight decay and
# warmup of BERT-style fine-tuning recipes.
RECIPE: dict[str, dict[str, Any]] = {"optim": {"weight_decay": 0.01, "warmup_ratio": 0.1}}
METHODS = ("full", "lora", "head_only")


def starter_spec(task: str, method: str = "full") -> str:
    """The commented starter spec of `task`; for lora or head_only the model section says so and optim.lr is
    that method's rate (README: "Learning rates that fit the method")."""
    from homofit.tasks import Task, task_names
    from homofit.tasks import task_class as registered

    task = task.strip().lower()
    if task not in task_names():
        raise HomofitError(f"no starter spec for task '{task}'; choose one of {', '.join(task_names())}.")
    method = {"head": "head_only"}.get(method, method)
    if method not in METHODS:
        raise HomofitError(f"--method {method}: choose full, lora or head_only.")
    task_class = registered(task)
    config_type = task_class.config_type
    if method == "head_only" and "backbone" in config_type.model_fields:
        raise HomofitError(f"--method head_only: a {task} model's output layer is its decoder, tied to the frozen "
                           "embeddings, so nothing would train; use full or lora.")
    starter = {section: {**Task.starter.get(section, {}), **task_class.starter.get(section, {})}
               for section in {*Task.starter, *task_class.starter}}  # a task's values over the generic ones
    unknown = set(starter) - {"task", *SECTIONS}
    if unknown:
        raise ValueError(f"{task_class.__name__}.starter: {sorted(unknown)} are not sections a starter spec shows")

    command = f"homofit init {task}" + (f" --method {method}" if method != "full" else "")
    lines = [f"# homofit starter spec for task type {task} ({command}).",
             *_comment_lines(_summary(task_class), 0),
             "# Train with:  homofit train THIS.yaml            Check first:  homofit validate THIS.yaml",
             "# Any key can be overridden on the command line:  homofit train THIS.yaml optim.lr=3e-5",
             "", "task:"]
    task_values = {"type": task, **_all_values(config_type, starter.get("task", {}))}
    lines += _render(config_type, task_values, 2, {"type": " | ".join(task_names())})
    for section, (section_type, common_keys) in SECTIONS.items():
        settings = _method_settings(method).get(section, {})
        overrides = {**RECIPE.get(section, {}), **starter.get(section, {}),
                     **{key: value for key, (value, _) in settings.items()}}
        shown = {*common_keys, *overrides} - ({"freeze"} if section == "model" and method == "lora" else set())
        notes = {key: note for key, (_, note) in settings.items() if note}
        values = {key: value for key, value in _all_values(section_type, overrides).items() if key in shown}
        lines += ["", f"{section}:", *_render(section_type, values, 2, notes)]
    return "\n".join(lines) + "\n"


def _method_settings(method: str) -> dict[str, dict[str, tuple[Any, str | None]]]:
    """What a way of fine-tuning writes into the spec: section -> key -> (value, comment); a comment of None
    keeps the field's description. With LoRA the spec leaves model.freeze out: the adapters and the head train."""
    full_rate = _yaml_value(METHOD_LEARNING_RATES["full"])
    rate_note = None if method == "full" else f"{method}'s default rate (full fine-tuning: {full_rate})"
    settings: dict[str, dict[str, tuple[Any, str | None]]] = {}
    settings["optim"] = {"lr": (METHOD_LEARNING_RATES[method], rate_note)}
    if method == "lora":
        settings["model"] = {"lora": ({"r": 8, "alpha": 16, "dropout": 0.05},
                                      "adapters on peft's default modules; the head trains whole")}
    if method == "head_only":
        settings["model"] = {"freeze": ("all_but_head", "only the task head (and the pooler it reads) trains")}
    return settings


def _summary(task_class: type) -> str:
    """The first paragraph of the task class's docstring, else of its module's."""
    docstring = task_class.__doc__ or sys.modules[task_class.__module__].__doc__ or ""
    return " ".join(inspect.cleandoc(docstring).split("\n\n")[0].split())


def _field_order(model_type: type[BaseModel]) -> list[str]:
    """`type` first, then the fields a class declares itself before those it inherits."""
    declared = [name for cls in model_type.__mro__ for name in inspect.get_annotations(cls)]
    return [name for name in dict.fromkeys(["type", *declared]) if name in model_type.model_fields]


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model of a field that always holds one (rendered as a nested mapping), else None."""
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _all_values(model_type: type[BaseModel], overrides: dict[str, Any]) -> dict[str, Any]:
    """Every field of `model_type` in display order: the override where there is one, else the default;
    nested models field by field."""
    values: dict[str, Any] = {}
    for name in _field_order(model_type):
        field = model_type.model_fields[name]
        nested = _nested_model(field)
        if nested is not None and isinstance(overrides.get(name, {}), dict):
            values[name] = _all_values(nested, overrides.get(name, {}))
        elif name in overrides:
            values[name] = overrides[name]
        elif field.is_required():
            raise ValueError(f"{model_type.__name__}.{name} is required and the task's starter gives no value")
        else:
            values[name] = to_jsonable_python(field.get_default(call_default_factory=True))
    return values


def _render(model_type: type[BaseModel], values: dict[str, Any], indent: int, notes: dict[str, str]) -> list[str]:
    """YAML lines for `values`, each key with its note or its field's description as a comment."""
    lines: list[str] = []
    for key, value in values.items():
        field = model_type.model_fields[key]
        comment = notes.get(key, _description(field))
        nested = _nested_model(field)
        if nested is not None and isinstance(value, dict):
            lines += _with_comment(" " * indent + f"{key}:", comment, indent)
            lines += _render(nested, value, indent + 2, {})
        else:
            lines += _with_comment(" " * indent + f"{key}: {_yaml_value(value)}", comment, indent)
    return lines


def _description(field: FieldInfo) -> str:
    """The field's choices (for a Literal) and description."""
    choices = _choices(field.annotation)
    parts = [" | ".join(choices)] if len(choices) > 1 else []
    if field.description:
        parts.append(field.description)
    return ". ".join(parts)


def _choices(annotation: Any) -> list[str]:
    """The values a Literal annotation (or an optional one) allows; [] for any other type."""
    if get_origin(annotation) is Literal:
        return [str(choice) for choice in get_args(annotation)]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        return _choices(members[0]) if len(members) == 1 else []
    return []


def _yaml_value(value: Any) -> str:
    """`value` as one line of YAML (flow style for mappings and lists); floats under 0.01 as learning rates are
    written, 5.0e-5 (not 5e-05, 0.00005 or 5.0e-05)."""
    if isinstance(value, float) and 0 < abs(value) < 0.01 and float(f"{value:.1e}") == value:
        return f"{value:.1e}".replace("e-0", "e-")
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=sys.maxsize).strip()
    text = text.removesuffix("\n...").strip()
    return re.sub(r"(\d[eE][-+])0+(\d)", r"\1\2", text)


def _with_comment(line: str, comment: str, indent: int) -> list[str]:
    """`line` with `comment` after it, continued in the same column; when that leaves too little room, the
    comment goes on the lines above."""
    if not comment:
        return [line]
    column = max(COMMENT_COLUMN, len(line) + 2)
    if LINE_WIDTH - column - 2 >= NARROWEST_TRAILING_COMMENT:
        first, *rest = textwrap.wrap(comment, LINE_WIDTH - column - 2, break_on_hyphens=False)
        return [line.ljust(column) + "# " + first, *(" " * column + "# " + part for part in rest)]
    return [*_comment_lines(comment, indent), line]


def _comment_lines(text: str, indent: int) -> list[str]:
    """`text` as comment lines at `indent`, wrapped to the line width."""
    return [" " * indent + "# " + part for part in textwrap.wrap(text, LINE_WIDTH - indent - 2, break_on_hyphens=False)]
