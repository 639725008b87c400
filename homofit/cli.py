"""The command line. Each command parses its arguments and calls one function."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from homofit.errors import HomofitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained language models from one YAML spec.")
console = Console()
error_console = Console(stderr=True)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print a HomofitError in one or two lines, without a traceback, and exit with code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HomofitError as error:
            # escaped: a path or tag in the message may hold [brackets] that rich would read as markup
            message = escape(str(error))
            error_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@user_errors
def train(
    config: Annotated[Path, typer.Argument(help="The YAML spec.")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides, e.g. optim.lr=3e-5.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Put the run exactly here (must not exist).")] = None,
) -> None:
    """Fine-tune a model as the spec says and write a run directory."""
    from homofit.config import load_config
    from homofit.reporting import print_train_summary, train_progress
    from homofit.train import train as run_training

    spec = load_config(config, overrides or [])
    quiet_transformers()
    with train_progress(console) as progress:
        summary = run_training(spec, run_dir, overrides or [], progress)
    if summary is not None:
        print_train_summary(console, summary)


@app.command("eval")
@user_errors
def eval_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A checkpoint folder, e.g. RUN/checkpoints/best.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Score this file instead of a split of the spec.")] = None,
    split: Annotated[str, typer.Option("--split", help="dev or test, from the checkpoint's spec.")] = "test",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write <split or file stem>.json/.txt here.")] = None,
) -> None:
    """Score a checkpoint on a split of its spec or on another file."""
    from homofit.inference import eval_checkpoint
    from homofit.reporting import print_scores

    if split not in {"dev", "test"}:
        raise HomofitError(f"--split {split}: choose dev or test.")
    quiet_transformers()
    name, report = eval_checkpoint(checkpoint, data, split, out)
    print_scores(console, {name: report})


@app.command()
@user_errors
def predict(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A checkpoint folder.")],
    source: Annotated[str, typer.Argument(metavar="INPUT", help="A file (raw text, one input a line, or a data file) or raw text.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write JSONL here instead of to standard output.")] = None,
) -> None:
    """Predict on new text; writes JSON Lines."""
    from homofit.inference import predict as run_predict

    if out is not None and out.exists():
        raise HomofitError(f"--out {out}: already exists; homofit does not overwrite it. Choose a new file.")
    quiet_transformers()
    records = run_predict(checkpoint, source, out)
    if out is None:
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        error_console.print(f"wrote {len(records)} predictions to {out}")


@app.command()
@user_errors
def validate(config: Annotated[Path, typer.Argument(help="The YAML spec.")],
             overrides: Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides.")] = None) -> None:
    """Check a spec and its data files without loading a model."""
    from homofit.config import load_config
    from homofit.validation import validate_spec

    spec = load_config(config, overrides or [])
    for line in validate_spec(spec):
        console.print(line, highlight=False)
    console.print(f"[green]ok:[/] {config} is valid")


@app.command()
@user_errors
def init(task: Annotated[str, typer.Argument(help="The task family, e.g. ner.")]) -> None:
    """Print a commented starter spec: homofit init ner > my.yaml"""
    templates = resources.files("homofit") / "templates"
    template = templates / f"{task}.yaml"
    if not template.is_file():
        known = sorted(entry.name.removesuffix(".yaml") for entry in templates.iterdir() if entry.name.endswith(".yaml"))
        raise HomofitError(f"no starter spec for task '{task}'; choose one of {', '.join(known)}.")
    sys.stdout.write(template.read_text(encoding="utf-8"))


def configure_logging() -> None:
    """homofit's messages go to the console (INFO and up); transformers' load reports and bars stay quiet."""
    import logging

    from rich.logging import RichHandler

    logger = logging.getLogger("homofit")
    logger.setLevel(logging.DEBUG)
    handler = RichHandler(console=error_console, show_path=False, show_time=False, level=logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False


def quiet_transformers() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def main() -> None:
    configure_logging()
    app()


if __name__ == "__main__":
    main()
