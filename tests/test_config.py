"""homofit.config: loading specs, overrides, and the exact messages a user sees for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from homofit.config import dump_config, load_config
from homofit.errors import HomofitError
from homofit.tasks import task_config_types


def task_names() -> list[str]:
    """Registered task types in registry order, the order the spec's union and its messages list them."""
    return [config_type.model_fields["type"].default for config_type in task_config_types()]

MINIMAL = "task:\n  type: ner\ndata:\n  train: train.conll\n"


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path | None, overrides: list[str] = ()) -> str:
    with pytest.raises(HomofitError) as error:
        load_config(path, list(overrides))
    return str(error.value)


def test_minimal_spec_gets_the_defaults(tmp_path: Path) -> None:
    config = load_config(write_spec(tmp_path, MINIMAL))
    assert config.task.type == "ner" and config.task.scheme == "IOB2"
    assert config.data.train == Path("train.conll") and config.data.dev is None
    assert (config.data.max_length, config.data.stride, config.data.format) == (128, 32, "auto")
    assert (config.optim.name, config.optim.lr, config.optim.schedule) == ("adamw", 5e-5, "linear")
    train = config.train
    assert (train.epochs, train.batch_size, train.eval_every, train.seed) == (3.0, 16, "epoch", 42)
    assert config.model.freeze == "none"


def test_overrides_are_typed_like_yaml(tmp_path: Path) -> None:
    config = load_config(write_spec(tmp_path, MINIMAL), [
        "optim.lr=3e-5", "train.eval_every=25", "data.dev=dev.conll", "task.label_names=[O, B-X, I-X]",
        "model.freeze=bottom", "model.freeze_layers=1", "train.early_stopping.patience=2",
    ])
    assert config.optim.lr == 3e-5
    assert config.train.eval_every == 25
    assert config.data.dev == Path("dev.conll")
    assert config.task.label_names == ["O", "B-X", "I-X"]
    assert (config.model.freeze, config.model.freeze_layers) == ("bottom", 1)
    assert config.train.early_stopping.patience == 2


def test_spec_from_overrides_alone() -> None:
    config = load_config(None, ["task.type=ner", "data.train=a.conll"])
    assert (config.task.type, config.data.train) == ("ner", Path("a.conll"))


def test_dumped_spec_loads_back_the_same(tmp_path: Path) -> None:
    config = load_config(write_spec(tmp_path, MINIMAL), ["optim.betas=[0.8, 0.9]", "train.max_steps=7"])
    again = load_config(write_spec(tmp_path, dump_config(config)))
    assert again == config
    assert yaml.safe_load(dump_config(config))["data"]["train"] == "train.conll"


# -- messages ---------------------------------------------------------------------------------------------


def test_unknown_key_with_line_and_suggestion(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL + "  max_lenght: 64\noptim:\n  lr: 1.0e-4\n")
    assert load_error(path) == f"invalid spec:\n  {path}:5: data.max_lenght: unknown key; did you mean 'max_length'?"


def test_unknown_section_and_unknown_task_key(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "task:\n  type: ner\n  schem: IOB1\ntrian:\n  epochs: 1\n")
    assert load_error(path) == (
        f"invalid spec:\n  {path}:3: task.schem: unknown key; did you mean 'scheme'?\n"
        f"  {path}:4: trian: unknown key; did you mean 'train'?"
    )


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL + "output:\n  zzz: 1\n")
    assert load_error(path) == (f"invalid spec:\n  {path}:6: output.zzz: unknown key; known keys: dir, name, "
                                "save_last, loggers, mlflow_tracking_uri, wandb_project, wandb_mode")


def test_misspelled_task_type(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "data:\n  train: a.conll\ntask:\n  type: nerr\n")
    choices = ", ".join(repr(name) for name in task_names())
    assert load_error(path) == (
        f"invalid spec:\n  {path}:4: task.type: unknown task type 'nerr'; choose one of {choices}; did you mean 'ner'?")


def test_missing_task_and_missing_type(tmp_path: Path) -> None:
    assert load_error(write_spec(tmp_path, "data:\n  train: a.conll\n")) == (
        f"invalid spec:\n  {tmp_path / 'spec.yaml'}: task: required key is missing"
    )
    message = load_error(write_spec(tmp_path, "task:\n  scheme: IOB2\n"))
    families = ", ".join(task_names())
    path = tmp_path / "spec.yaml"
    assert message == f"invalid spec:\n  {path}:1: task: missing 'type' (which task family: {families})"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("train:\n  batch_size: sixteen\n",
         "6: train.batch_size: Input should be a valid integer, unable to parse string as an integer"),
        ("train:\n  eval_every: often\n",
         "6: train.eval_every: Input should be 'epoch' or a valid integer, unable to parse string as an integer"),
        ("train:\n  eval_every: 0\n", "6: train.eval_every: Input should be 'epoch' or greater than or equal to 1"),
        ("optim:\n  lr: -1.0e-5\n", "6: optim.lr: Input should be greater than 0"),
        ("optim:\n  warmup_ratio: 1.5\n", "6: optim.warmup_ratio: Input should be less than or equal to 1"),
        ("optim:\n  schedule: step\n", "6: optim.schedule: Input should be 'linear', 'cosine' or 'constant'"),
        ("data:\n  max_length: 4\n", "6: data.max_length: Input should be greater than or equal to 8"),
        ("model:\n  dropout: 1.0\n", "6: model.dropout: Input should be less than 1"),
        ("model:\n  freeze: bottom\n", "5: model: freeze: bottom needs freeze_layers >= 1 (how many layers to freeze)"),
        ("model:\n  freeze_layers: 2\n", "5: model: freeze_layers is only read with freeze: bottom"),
        ("optim: 3\n", "5: optim: Input should be a valid dictionary or instance of OptimConfig"),
    ],
)
def test_wrong_type_and_out_of_range(tmp_path: Path, section: str, message: str) -> None:
    path = write_spec(tmp_path, "task:\n  type: ner\n\n# the section under test is on line 5\n" + section)
    assert load_error(path) == f"invalid spec:\n  {path}:{message}"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "task:\n  type: ner\noptim:\n  lr: 0\ntrain:\n  epochs: 0\n  batch_sise: 8\n")
    assert load_error(path) == (
        f"invalid spec:\n  {path}:4: optim.lr: Input should be greater than 0\n"
        f"  {path}:6: train.epochs: Input should be greater than 0\n"
        f"  {path}:7: train.batch_sise: unknown key; did you mean 'batch_size'?"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "invalid spec:\n  override 'optim.lrr=1': optim.lrr: unknown key; did you mean 'lr'?"),
        ("optim.lr=fast", ("invalid spec:\n  override 'optim.lr=fast': optim.lr: Input should be a valid number, "
                           "unable to parse string as a number")),
        ("task.type=nerr", None),
        ("model.freeze=bottom",
         ("invalid spec:\n  override 'model.freeze=bottom': model: freeze: bottom needs freeze_layers >= 1 "
          "(how many layers to freeze)")),
        ("optim.lr.x=1", "invalid spec:\n  override 'optim.lr.x=1': optim.lr: Input should be a valid number"),
        ("data.train.x=1", "override 'data.train.x=1': data.train is a value, not a section."),
    ],
)
def test_override_errors(tmp_path: Path, override: str, message: str | None) -> None:
    path = write_spec(tmp_path, MINIMAL)
    if message is None:
        choices = ", ".join(repr(name) for name in task_names())
        message = (f"invalid spec:\n  override 'task.type=nerr': task.type: unknown task type 'nerr'; "
                   f"choose one of {choices}; did you mean 'ner'?")
    assert load_error(path, [override]) == message


@pytest.mark.parametrize("override", ["optim.lr", "=3", "optim..lr=3", ".lr=3", "optim.=3", "optim.lr 3e-5"])
def test_bad_override_syntax(tmp_path: Path, override: str) -> None:
    assert load_error(write_spec(tmp_path, MINIMAL), [override]) == (
        f"override '{override}': write overrides as dotted.key=value, e.g. optim.lr=3e-5"
    )


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "my-ner.yaml"
    assert load_error(path) == f"{path}: spec file not found. Write one with `homofit init ner > my-ner.yaml`."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task:\n  type: ner\n data: 1\n",
         "3: not valid YAML (expected <block end>, but found '<block mapping start>')."),
        ("task:\n\ttype: ner\n", "2: not valid YAML (found character '\\t' that cannot start any token)."),
        ("task: {type: ner\ndata: {}\n", "2: not valid YAML (expected ',' or '}', but got ':')."),
        # Found only at the end of the file: the line is where the bracket or quote was opened.
        ("task:\n  type: ner\ndata:\n  train: [a.conll\n",
         "4: not valid YAML (expected ',' or ']', but got '<stream end>')."),
        ("task:\n  type: 'ner\n", "2: not valid YAML (found unexpected end of stream)."),
    ],
)
def test_invalid_yaml_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write_spec(tmp_path, text)
    assert load_error(path) == f"{path}:{message}"


def test_spec_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "- task\n- data\n")
    assert load_error(path) == f"{path}:1: the spec must be a mapping of sections (task, data, model, ...)."
