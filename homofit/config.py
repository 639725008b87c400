"""The experiment spec: pydantic models and `load_config`, the only place YAML is read."""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from homofit.errors import HomofitError
from homofit.textfiles import read_text


class StrictModel(BaseModel):
    """Every spec section rejects unknown keys, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(StrictModel):
    format: Literal["auto", "conll", "jsonl", "json", "csv", "tsv"] = Field(
        "auto", description="File format; 'auto' decides from the file extension."
    )
    train: Path | None = Field(None, description="The training split: a file, or a folder for task families that "
                                                 "read one.")
    dev: Path | None = Field(None, description="Scored while training: periodic evaluation, early stopping and the "
                                               "best checkpoint.")
    test: Path | None = Field(None, description="Scored once at the end, with the best checkpoint.")
    columns: dict[str, int | str] = Field(
        default_factory=dict, description="Which columns or fields hold what; each task names its own keys."
    )
    header: bool | None = Field(
        None, description="CSV/TSV: whether the first row names the columns; default: yes when data.columns names them."
    )
    max_length: int = Field(128, ge=8, description="Longest input in subword tokens, special tokens included.")
    stride: int = Field(32, ge=0, description="Tokens shared by consecutive windows over a long input.")
    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)
    skip_empty_targets: bool = Field(False, description="Generation: drop (and count) training examples whose target "
                                                        "is empty instead of refusing the file.")
    dev_split: float | None = Field(None, gt=0.0, lt=1.0, description="Without data.dev: hold out this fraction of "
                                    "the training examples as dev (stratified by label where there is one).")
    dev_split_seed: int = Field(0, description="Seed of data.dev_split's draw; kept apart from train.seed so every "
                                               "seed of a study scores the same dev examples.")
    cache: bool = Field(True, description="Keep the tokenized splits in HOMOFIT_CACHE_DIR (default "
                                          "~/.cache/homofit), so a run on the same data, tokenizer and settings skips "
                                          "tokenization and reads them memory-mapped.")

    @model_validator(mode="after")
    def _one_source_of_dev(self) -> DataConfig:
        if self.dev_split is not None and self.dev is not None:
            raise ValueError("give data.dev or data.dev_split, not both (dev_split carves dev out of data.train)")
        return self


class LoraConfig(StrictModel):
    """Low-rank adapters (peft): only the adapters and the task head train; checkpoints hold merged weights."""

    r: int = Field(8, ge=1, description="Rank of the adapters.")
    alpha: float = Field(16.0, gt=0.0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | None = Field(None, description="Module names to adapt; default: peft's for the "
                                                               "architecture.")


class ModelConfig(StrictModel):
    name_or_path: str = Field("sentence-transformers/all-MiniLM-L6-v2", description="A folder, a homofit "
                              "checkpoint, a hub id, or a packaged model.")
    dropout: float | None = Field(None, ge=0.0, lt=1.0, description="Overrides every dropout probability of the "
                                                                      "backbone (hidden, attention, classifier).")
    freeze: Literal["none", "embeddings", "bottom", "all_but_head"] = Field(
        "none", description="What does not train: the embeddings; with bottom, also the first freeze_layers layers; "
                            "with all_but_head, everything but the task head.")
    freeze_layers: int = Field(0, ge=0, description="With freeze: bottom, how many layers (plus embeddings).")
    gguf_file: str | None = Field(None, description="A GGUF file in name_or_path's folder to load (dequantized to "
                                                    "float32); checkpoints are saved as safetensors.")
    lora: LoraConfig | None = Field(None, description="Parameter-efficient fine-tuning with LoRA adapters.")

    @model_validator(mode="after")
    def _freeze_layers_only_with_bottom(self) -> ModelConfig:
        if self.freeze == "bottom" and self.freeze_layers == 0:
            raise ValueError("freeze: bottom needs freeze_layers >= 1 (how many layers to freeze)")
        if self.freeze != "bottom" and self.freeze_layers:
            raise ValueError("freeze_layers is only read with freeze: bottom")
        return self


class OptimConfig(StrictModel):
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float | None = Field(None, gt=0.0, description="Default (or null): 5e-5 for full fine-tuning, 5e-4 with "
                                                       "model.lora, 1e-3 with freeze: all_but_head.")
    weight_decay: float = Field(0.0, ge=0.0, description="Biases and norm weights get none.")
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="SGD only.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="How the learning rate falls "
                                                                                    "to 0 after warmup.")
    warmup_steps: int = Field(0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Used when warmup_steps is 0.")


class EarlyStoppingConfig(StrictModel):
    metric: str | None = Field(None, description="A headline key of the dev report, or loss (the training loss on "
                                                 "dev); default: the task's headline metric.")
    mode: Literal["max", "min"] | None = Field(None, description="Default: min for loss and perplexity, else max.")
    patience: int | None = Field(None, ge=1, description="Evaluations without improvement before stopping.")


class TrainConfig(StrictModel):
    epochs: float = Field(3.0, gt=0.0, description="Passes over the training data; a fraction is allowed.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs.")
    batch_size: int = Field(16, ge=1, description="Examples per batch (per process under torchrun); grad_accum "
                                                  "batches make a step.")
    eval_batch_size: int | None = Field(None, ge=1, description="Default: train.batch_size.")
    grad_accum: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_every: Literal["epoch"] | Annotated[int, Field(ge=1)] = Field(
        "epoch", description="Score dev after every epoch, or every this many optimizer steps.")
    log_every: int = Field(10, ge=1)
    eval_before_training: bool = True
    save_every: int | None = Field(None, ge=1, description="Write a resumable checkpoints/last every N optimizer "
                                                           "steps.")
    batching: Literal["random", "by_length"] = Field(
        "by_length", description="by_length: shuffled groups of 50 batches sorted by length, batches in shuffled "
                                 "order (less padding, faster, as accurate on WNUT-17); random: a plain shuffle.")
    pad_to_multiple_of: int | None = Field(None, ge=1, description="Pad every batch's inputs to a multiple of this "
                                           "many tokens (never past data.max_length), so compiled graphs are reused; "
                                           "default 32 with train.compile, else none.")
    compile: bool = Field(False, description="torch.compile the model in place (dynamic=False; the first step's "
                                             "time, compiling included, is logged); meant for GPUs and long runs.")
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description="Under torchrun: ddp (a full copy per process) or "
                                                                "fsdp (FULL_SHARD: weights, gradients and optimizer "
                                                                "state sharded over the processes).")
    dist_timeout_s: int = Field(1800, ge=10, description="Under torchrun: how long a collective waits for the other "
                                                          "processes before the run stops with an error.")
    nan_policy: Literal["stop", "skip"] = Field(
        "stop", description="On a non-finite loss: stop the run (exit code 4), or skip that step's update "
                            "(checks every step, which costs a host sync each).")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    seed: int = Field(42, description="Seeds initialisation, shuffling and dropout.")


class OutputConfig(StrictModel):
    dir: Path = Field(Path("runs"), description="The folder that holds the runs, one folder each, named after "
                                                "output.name and the time.")
    name: str | None = Field(None, description="Prefix of the run folder's name; default: the task type.")
    save_last: bool = True
    loggers: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list, description="Experiment trackers that get every event metrics.jsonl gets (any subset).")
    mlflow_tracking_uri: str | None = Field(None, description="Default: MLFLOW_TRACKING_URI, else "
                                                              "sqlite:///OUTPUT_DIR/mlflow.db.")
    wandb_project: str = "homofit"
    wandb_mode: Literal["offline", "online"] = Field(
        "offline", description="offline writes the run under wandb/ in the run directory; `wandb sync` uploads it.")


# The learning rate each way of fine-tuning gets when the spec does not set optim.lr. Full fine-tuning: the
# usual 5e-5 of BERT-style recipes. LoRA: 5e-4, the LoRA paper's rate for RoBERTa-base on GLUE (4e-4..5e-4;
# peft's examples use 1e-4..1e-3). Head only (freeze: all_but_head, a linear probe plus the pooler): 1e-3,
# Adam's usual rate for a few freshly initialised layers. A full-fine-tuning rate leaves the last two far
# under-trained: on a 6-class question set with MiniLM, LoRA at 1e-4 scored 28% and head-only 18%, under
# the majority class.
METHOD_LEARNING_RATES = {"full": 5e-5, "lora": 5e-4, "head_only": 1e-3}


def fine_tuning_method(model: ModelConfig) -> str:
    """full, lora or head_only: what trains, which decides the default learning rate."""
    if model.lora is not None:
        return "lora"
    return "head_only" if model.freeze == "all_but_head" else "full"


SPACE_KINDS = ("log_uniform", "uniform", "int", "choices")


class SweepConfig(StrictModel):
    """`homofit sweep`: a search on Optuna over dotted spec keys (`homofit train` ignores this section)."""

    metric: str | None = Field(None, description="The dev metric to optimize; default: the task's headline metric.")
    direction: Literal["maximize", "minimize"] | None = Field(None, description="Default: minimize for perplexity "
                                                                                "and loss, else maximize.")
    trials: int = Field(20, ge=1, description="Finished trials (complete or pruned) the study should reach.")
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["none", "median", "hyperband"] = "median"
    startup_trials: int = Field(5, ge=0, description="Trials finished before the sampler and pruner act.")
    seed: int = Field(0, description="Seed of the sampler.")
    space: dict[str, dict[str, Any]] = Field(description="dotted.key: {log_uniform: [lo, hi]} | {uniform: [lo, hi]} "
                                                         "| {int: [lo, hi]} | {choices: [...]}")
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="Points to try first, e.g. the "
                                                                             "spec's own values.")
    test_best: bool = Field(True, description="Score test once, with the best trial's checkpoint.")
    heartbeat_seconds: int = Field(30, ge=1, description="A trial silent for twice this long (its worker was "
                                                          "killed) is marked failed.")

    @field_validator("space")
    @classmethod
    def _check_space(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not space:
            raise ValueError("give at least one key to search, e.g. optim.lr: {log_uniform: [1.0e-5, 1.0e-3]}")
        for key, entry in space.items():
            if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in SPACE_KINDS:
                raise ValueError(f"{key}: write one of {{log_uniform: [lo, hi]}}, {{uniform: [lo, hi]}}, "
                                 "{int: [lo, hi]}, {choices: [a, b, ...]}")
            kind, values = next(iter(entry.items()))
            if not isinstance(values, list) or not values:
                raise ValueError(f"{key}: {kind} takes a list, e.g. {kind}: [1, 2]")
            if kind != "choices":
                if len(values) != 2 or not all(isinstance(value, (int, float)) and not isinstance(value, bool)
                                               for value in values) or values[0] >= values[1]:
                    raise ValueError(f"{key}: {kind} takes [low, high] with low < high, got {values}")
                if kind == "log_uniform" and values[0] <= 0:
                    raise ValueError(f"{key}: log_uniform needs a positive low bound, got {values[0]}")
                if kind == "int" and not all(isinstance(value, int) for value in values):
                    raise ValueError(f"{key}: int takes whole-number bounds, got {values}")
        return space


class _ExperimentBase(StrictModel):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    sweep: SweepConfig | None = None

    @model_validator(mode="after")
    def _method_learning_rate(self) -> _ExperimentBase:
        """optim.lr, when the spec leaves it out (or sets it to null), is the fine-tuning method's rate."""
        if self.optim.lr is None:
            self.optim.lr = METHOD_LEARNING_RATES[fine_tuning_method(self.model)]
        return self


@functools.cache
def experiment_config_type() -> type[_ExperimentBase]:
    """The full spec model; `task` is a union over every registered task's config, keyed by `type`."""
    from homofit.tasks import task_config_types

    task_union = Annotated[Union[tuple(task_config_types())], Field(discriminator="type")]  # noqa: UP007
    return create_model("ExperimentConfig", __base__=_ExperimentBase, task=(task_union, ...))


ExperimentConfig = _ExperimentBase  # for annotations: the dynamic model subclasses it


def load_config(path: Path | None, overrides: list[str] = (), base: dict[str, Any] | None = None) -> Any:
    """Read a YAML spec, apply dotted `key=value` overrides and validate the result.

    Raises HomofitError with the dotted key, the file and line, and a fix for every problem.
    """
    lines: dict[tuple[str, ...], int] = {}
    raw: dict[str, Any] = dict(base or {})
    if path is not None:
        raw, lines = _read_yaml_with_lines(path)
    override_keys: dict[tuple[str, ...], str] = {}
    for override in overrides:
        keys, value = _parse_override(override)
        _set_dotted(raw, keys, value, override)
        override_keys[keys] = override
    try:
        return experiment_config_type().model_validate(raw)
    except ValidationError as error:
        raise HomofitError(_format_validation_error(error, path, lines, override_keys)) from None


def config_to_dict(config: BaseModel) -> dict[str, Any]:
    """The resolved spec as plain YAML-able data (paths as strings)."""
    return config.model_dump(mode="json")


def dump_config(config: BaseModel) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def _read_yaml_with_lines(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    if not path.exists():
        raise HomofitError(f"{path}: spec file not found. Write one with `homofit init ner > {path.name}`.")
    text = read_text(path, "spec file")
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        if mark is not None and mark.line >= len(text.splitlines()) and getattr(error, "context_mark", None):
            mark = error.context_mark  # found at the end of the file: point at what was left open
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise HomofitError(f"{where}: not valid YAML ({getattr(error, 'problem', error)}).") from None
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        raise HomofitError(f"{path}:1: the spec must be a mapping of sections (task, data, model, ...).")
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(node, (), lines, path)
    return raw, lines


def _collect_lines(node: yaml.Node, prefix: tuple[str, ...], lines: dict[tuple[str, ...], int], path: Path) -> None:
    """The line of every key; a key given twice in one mapping (YAML would keep the last silently) is an error."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            line = key_node.start_mark.line + 1
            if key in lines:
                raise HomofitError(f"{path}:{line}: duplicate key '{'.'.join(key)}' (first on line {lines[key]}); "
                                   "keep one of the two.")
            lines[key] = line
            _collect_lines(value_node, key, lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = (*prefix, str(index))
            lines[key] = item.start_mark.line + 1
            _collect_lines(item, key, lines, path)


def _parse_override(override: str) -> tuple[tuple[str, ...], Any]:
    key, sep, value = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise HomofitError(f"override '{override}': write overrides as dotted.key=value, e.g. optim.lr=3e-5")
    try:
        parsed = yaml.safe_load(value) if value else None
    except yaml.YAMLError:
        parsed = value
    return tuple(key.split(".")), parsed


def _set_dotted(raw: dict[str, Any], keys: tuple[str, ...], value: Any, override: str) -> None:
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            dotted = ".".join(keys[: depth + 1])
            raise HomofitError(f"override '{override}': {dotted} is a value, not a section.")
        node = child
    node[keys[-1]] = value


def _format_validation_error(
    error: ValidationError,
    path: Path | None,
    lines: dict[tuple[str, ...], int],
    override_keys: dict[tuple[str, ...], str],
) -> str:
    problems: dict[str, str] = {}  # "where dotted" -> message; a union's branches share one line
    for item in error.errors():
        loc = _spec_location(item["loc"])
        dotted = ".".join(loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _did_you_mean(loc[-1], _known_keys(loc[:-1]))
        elif item["type"] == "union_tag_invalid":
            expected = item.get("ctx", {}).get("expected_tags", "")
            tags = [tag.strip(" '") for tag in str(expected).split(",")]
            given = str(item.get("ctx", {}).get("tag", ""))
            loc = (*loc, "type")
            dotted = ".".join(loc)
            message = f"unknown task type '{given}'; choose one of {expected}" + _did_you_mean(given, tags)
        elif item["type"] == "union_tag_not_found":
            message = "missing 'type' (which task family: " + ", ".join(_task_names()) + ")"
        elif item["type"] == "missing":
            message = "required key is missing"
        key = f"{_where(loc, path, lines, override_keys)}{dotted}"
        problems[key] = f"{problems[key]} or {message.removeprefix('Input should be ')}" if key in problems else message
    return "invalid spec:\n  " + "\n  ".join(f"{key}: {message}" for key, message in problems.items())


def _spec_location(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """Drop pydantic's union branch names (the task tag, 'literal[...]', 'int', ...) from an error location."""
    cleaned: list[str] = []
    for index, part in enumerate(loc):
        if index == 1 and loc[0] == "task" and isinstance(part, str) and part in _task_names():
            continue
        if isinstance(part, str) and (
            "[" in part or part.startswith("constrained-") or part in {"int", "str", "float", "bool"}
        ):
            continue
        cleaned.append(str(part))
    return tuple(cleaned)


def _where(
    loc: tuple[str, ...], path: Path | None, lines: dict[tuple[str, ...], int], overrides: dict[tuple[str, ...], str]
) -> str:
    for keys, override in overrides.items():
        if len(keys) > len(loc) and keys[: len(loc)] == loc:
            return f"override '{override}': "
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in overrides:
            return f"override '{overrides[loc[:depth]]}': "
        if loc[:depth] in lines:
            return f"{path}:{lines[loc[:depth]]}: "
    return f"{path}: " if path else ""


def _known_keys(parent: tuple[str, ...]) -> list[str]:
    model: Any = experiment_config_type()
    for part in parent:
        if part == "task" and model is experiment_config_type():
            return sorted({key for task_type in _task_config_types() for key in task_type.model_fields})
        field = getattr(model, "model_fields", {}).get(part)
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known keys: {', '.join(candidates)}" if candidates else ""


def _task_config_types() -> list[type[BaseModel]]:
    from homofit.tasks import task_config_types

    return task_config_types()


def _task_names() -> list[str]:
    return [task_type.model_fields["type"].default for task_type in _task_config_types()]
