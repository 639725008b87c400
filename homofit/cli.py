"""The command line. Each command parses its arguments and calls one function."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from homofit.errors import HomofitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained language models from one YAML spec.")
console = Console()
error_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from homofit import __version__
        from homofit.buildinfo import homofit_commit

        commit = homofit_commit()
        sys.stdout.write(f"homofit {__version__}" + (f" ({commit[:12]})" if commit else "") + "\n")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print homofit's version and the commit it was built from.")]
          = False) -> None:
    """Fine-tune pretrained language models from one YAML spec."""


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print a HomofitError in one or two lines, without a traceback, and exit with code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HomofitError as error:
            # escaped: a path or tag in the message may hold [brackets] that rich would read as markup
            message = escape(str(error))
            color = "yellow" if error.exit_code == 3 else "red"
            error_console.print(f"[bold {color}]{error.label}:[/] {message}", highlight=False, markup=True,
                                soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            error_console.print("[bold yellow]interrupted[/] (checkpoints already written are complete)")
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@user_errors
def train(
    config: Annotated[Path | None, typer.Argument(help="The YAML spec (with --resume RUN_DIR: the run's own).")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. optim.lr=3e-5.")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir",
                                                 help="Put the run exactly here (must not exist).")] = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", help="Continue a run from its checkpoints/last: a run directory, or 'auto' for the newest "
                         "unfinished run of this spec under output.dir (a new run when there is none).")] = None,
    seeds: Annotated[str | None, typer.Option(
        "--seeds", help="Train once per seed (e.g. 1,2,3), each in its own run directory under one folder, and "
                        "summarize them: mean, standard deviation and `homofit compare` of the runs.")] = None,
    nproc: Annotated[int | None, typer.Option(
        "--nproc", help="Run under torch's launcher in N processes on this machine (one per GPU).")] = None,
) -> None:
    """Fine-tune a model as the spec says and write a run directory."""
    import os

    from homofit.reporting import PhaseDisplay, print_train_summary
    from homofit.train import train as run_training

    if nproc is not None and "LOCAL_RANK" not in os.environ:
        from homofit.launch import relaunch, without_nproc

        if config is not None:
            _train_spec(config, overrides or [], run_dir, resume)  # a bad spec fails here, once, before any launch
        raise typer.Exit(relaunch(nproc, without_nproc(sys.argv[1:])))

    if seeds is not None:
        from homofit.seeds import parse_seeds, train_seeds

        if resume is not None or config is None:
            raise HomofitError("--seeds: give the spec, and no --resume (resume each seed's run on its own).")
        seed_list = parse_seeds(seeds)
        quiet_transformers()
        train_seeds(config, overrides or [], seed_list, run_dir, lambda: PhaseDisplay(error_console), console)
        return
    spec, resume_run = _train_spec(config, overrides or [], run_dir, resume)
    quiet_transformers()
    with PhaseDisplay(error_console) as progress:
        summary = run_training(spec, run_dir, overrides or [], progress, resume_run)
    if summary is not None:
        print_train_summary(console, summary)


def _train_spec(config: Path | None, overrides: list[str], run_dir: Path | None,
                resume: str | None) -> tuple[Any, Path | None]:
    """The validated spec, and the run to continue when --resume names one."""
    import logging

    from homofit.config import load_config
    from homofit.train import find_resumable_run

    if config is not None and config.is_dir() and resume is None:
        raise HomofitError(f"{config}: a folder, not a spec; to continue that run use --resume {config}.")
    if resume is not None and config is not None and "=" in config.name and not config.exists():
        overrides = [str(config), *overrides]  # `--resume RUN key=value`: no spec, only overrides
        config = None
    if resume is None:
        if config is None:
            raise HomofitError("train: give the spec, e.g. homofit train configs/quickstart.yaml")
        return load_config(config, overrides), None
    if run_dir is not None:
        raise HomofitError("--run-dir and --resume: a resumed run stays in its own folder; give only one of them.")
    if resume == "auto":
        if config is None:
            raise HomofitError("--resume auto: give the spec too, e.g. homofit train my.yaml --resume auto")
        spec = load_config(config, overrides)
        found = find_resumable_run(spec)
        if found is None:
            logging.getLogger("homofit").info("--resume auto: no unfinished run of this spec under %s; starting a "
                                              "new one", spec.output.dir)
        return spec, found
    run = Path(resume)
    if not (run / "checkpoints" / "last").is_dir() and not (run / "checkpoints" / ".last.old").is_dir():
        hint = " (give the run directory, not its checkpoint)" if run.name in {"last", "best"} else ""
        raise HomofitError(f"--resume {run}: no checkpoints/last there to continue from{hint}; runs save it with "
                           "train.save_every, at the end, and on SIGTERM or Ctrl-C.")
    return load_config(config or run / "config.yaml", overrides), run


@app.command("eval")
@user_errors
def eval_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A checkpoint folder, e.g. RUN/checkpoints/best.")],
    data: Annotated[Path | None, typer.Option("--data", help="Score this file instead of a split of the spec.")] = None,
    split: Annotated[str, typer.Option("--split", help="train, dev or test, from the checkpoint's spec.")] = "test",
    out: Annotated[Path | None, typer.Option("--out", help="Write <split or file stem>.json/.txt here.")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="data.KEY=VALUE overrides of how files are read, "
                                                             "e.g. data.columns.text=sentence.")] = None,
) -> None:
    """Score a checkpoint on a split of its spec or on another file."""
    from homofit.checkpoint import read_checkpoint_state
    from homofit.inference import eval_checkpoint
    from homofit.reporting import print_scores
    from homofit.rundir import check_writable
    from homofit.tasks import task_class

    if split not in {"train", "dev", "test"}:
        raise HomofitError(f"--split {split}: choose train, dev or test.")
    if out is not None:
        check_writable(out, "--out")
    quiet_transformers()
    name, report = eval_checkpoint(checkpoint, data, split, out, overrides or [])
    print_scores(console, {name: report}, task_class(read_checkpoint_state(checkpoint).task_type).headline_metrics)


@app.command()
@user_errors
def predict(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A checkpoint folder.")],
    source: Annotated[str, typer.Argument(metavar="INPUT", help="A file (raw text, one input a line, or a data "
                                                                "file), raw text, or - for standard input.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write JSONL here instead of to standard output.")] = None,
    text: Annotated[bool, typer.Option("--text", help="INPUT is text even if it looks like a file path.")] = False,
) -> None:
    """Predict on new text; writes JSON Lines."""
    from homofit.inference import predict as run_predict
    from homofit.rundir import check_writable
    from homofit.textfiles import input_path

    if source == "-":
        source = sys.stdin.read()
    elif not text and input_path(source) is None and _looks_like_a_path(source):
        raise HomofitError(f"{source}: no such file; to predict on this text itself, add --text.")

    if out is not None and out.exists():
        raise HomofitError(f"--out {out}: already exists; homofit does not overwrite it. Choose a new file.")
    if out is not None:
        check_writable(out, "--out", folder=False)
    quiet_transformers()
    records = run_predict(checkpoint, source, out)
    if out is None:
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        error_console.print(f"wrote {len(records)} predictions to {out}")


def _looks_like_a_path(source: str) -> bool:
    """One short line with a folder separator or a data file's suffix: a mistyped path, not text to predict on."""
    if "\n" in source or len(source) > 255 or " " in source.strip():
        return False
    return "/" in source or Path(source).suffix.lower() in {".txt", ".conll", ".jsonl", ".json", ".csv", ".tsv", ".gz"}


@app.command("compare")
@user_errors
def compare_command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_OR_CHECKPOINT...", help="Run directories (their "
                                               "predictions) or checkpoints (predicted here).")],
    split: Annotated[str, typer.Option("--split", help="dev or test.")] = "test",
    data: Annotated[Path | None, typer.Option("--data", help="With checkpoints: predict on this file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write compare.json, compare.txt and figures here.")] = None,
    before: Annotated[bool, typer.Option("--before", help="Each run against its model before fine-tuning.")] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    fail_below: Annotated[float, typer.Option(
        "--fail-below", help="Generation: an output scoring under this sentence-level chrF / ROUGE-L (0-100) "
                             "fails.")] = 50.0,
) -> None:
    """Is one run really better than another, and do they fail on the same examples?"""
    import importlib.util

    from rich.progress import Progress

    from homofit.compare import compare, load_models, print_summary, write_outputs
    from homofit.rundir import check_writable

    if split not in {"dev", "test"}:
        raise HomofitError(f"--split {split}: choose dev or test.")
    if importlib.util.find_spec("scipy") is None:
        raise HomofitError("compare needs scipy for McNemar's exact test: pip install scipy")
    if out is not None:
        check_writable(out, "--out")
    quiet_transformers()
    models = load_models(list(runs), split, data, before, fail_below)
    with Progress(console=error_console, transient=True) as progress:
        bar = progress.add_task("bootstrap resamples", total=resamples)
        result = compare(models, resamples, seed, lambda done: progress.advance(bar, done))
    print_summary(console, result)
    if out is not None:
        for path in write_outputs(result, out):
            error_console.print(f"wrote {path}", highlight=False)


@app.command()
@user_errors
def sweep(
    config: Annotated[Path | None, typer.Argument(help="The YAML spec with a sweep: section.")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. sweep.trials=8.")] = None,
    trials: Annotated[int | None, typer.Option("--trials", min=1, help="Finished trials to reach "
                                                                          "(default: sweep.trials).")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="An Optuna storage URL shared by workers, e.g. "
                                                   "postgresql://user:pass@host/db (default: SQLite in the "
                                                   "sweep folder).")] = None,
    study: Annotated[str | None, typer.Option("--study", help="The study's name in the storage (default: the "
                                                                 "sweep folder's name).")] = None,
    sweep_dir: Annotated[Path | None, typer.Option("--sweep-dir", help="Put the sweep exactly here.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the sweep in this folder.")] = None,
) -> None:
    """Search hyperparameters on Optuna; every trial is a run directory under one sweep folder."""
    from homofit.reporting import PhaseDisplay
    from homofit.sweep import run_sweep

    if config is None and resume is None:
        raise HomofitError("sweep: give the spec, e.g. homofit sweep my.yaml, or --resume SWEEP_DIR")
    if resume is not None and sweep_dir is not None:
        raise HomofitError("--sweep-dir and --resume: a resumed sweep stays in its own folder; give only one of them.")
    if config is not None and resume is not None and "=" in config.name and not config.exists():
        overrides, config = [str(config), *(overrides or [])], None
    quiet_transformers()
    run_sweep(config, overrides or [], trials, storage, study, sweep_dir, resume, lambda: PhaseDisplay(error_console),
              console)


@app.command()
@user_errors
def runs(folder: Annotated[Path, typer.Argument(help="The folder that holds the runs (output.dir).")] = Path("runs"),
         as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON instead of a table.")] = False,
         ) -> None:
    """List the runs under a folder: task, model, status, steps, best dev and test score, time, path."""
    from homofit.runs import list_runs, print_runs, runs_as_json

    found = list_runs(folder)
    if as_json:
        sys.stdout.write(runs_as_json(found))
    else:
        print_runs(console, found, folder)


@app.command("debug-data")
@user_errors
def debug_data_command(
    config: Annotated[Path, typer.Argument(help="The YAML spec.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON instead of tables.")] = False,
) -> None:
    """Per split: counts, labels, unseen labels, duplicates, overlap with train, long and blank inputs."""
    from homofit.config import load_config
    from homofit.debug_data import debug_data, print_report, report_as_json

    spec = load_config(config, overrides or [])
    quiet_transformers()
    report = debug_data(spec)
    if as_json:
        sys.stdout.write(report_as_json(report))
    else:
        print_report(console, report)


@app.command()
@user_errors
def validate(config: Annotated[Path, typer.Argument(help="The YAML spec.")],
             overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None) -> None:
    """Check a spec and its data files without loading a model."""
    from homofit.config import load_config
    from homofit.validation import validate_spec

    spec = load_config(config, overrides or [])
    for line in validate_spec(spec):
        console.print(line, highlight=False)
    console.print(f"[green]ok:[/] {config} is valid")


@app.command()
@user_errors
def init(
    task: Annotated[str, typer.Argument(help="The task family, e.g. ner (a wrong one lists them all).")],
    method: Annotated[str, typer.Option(
        help="What trains: full, lora (adapters + head) or head_only (freeze: all_but_head); the spec gets that "
             "method's learning rate.")] = "full",
) -> None:
    """Print a commented starter spec: homofit init ner > my.yaml"""
    from homofit.starter import starter_spec

    sys.stdout.write(starter_spec(task, method))


class PlainHandler(logging.Handler):
    """`LEVEL    message` lines on standard error, looked up when written (as the console does)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname:<8} {self.format(record)}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: a failed write must not stop the run
            self.handleError(record)


def configure_logging() -> None:
    """homofit's messages go to the console (INFO and up); transformers' load reports and bars stay quiet."""

    from rich.logging import RichHandler

    logger = logging.getLogger("homofit")
    logger.setLevel(logging.DEBUG)
    if error_console.is_terminal:
        handler: logging.Handler = RichHandler(console=error_console, show_path=False, show_time=False)
    else:  # piped, in a log file or CI: one unwrapped, unpadded line per message, easy to grep
        handler = PlainHandler()
    handler.setLevel(logging.INFO)
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
