"""`homofit sweep`: hyperparameter search on Optuna over the spec's own keys.

Each trial is an ordinary run directory under one sweep folder (SWEEP/trial-NNN), trained on train and chosen
on dev only (a trial never reads test). Dev evaluations go to Optuna as intermediate values, so its pruner
stops bad trials early. The study lives in an SQLite file in the sweep folder, or in any Optuna storage URL
that several workers share; Optuna's heartbeat marks a trial whose worker was killed as failed. At the end:
the trial table (console and trials.csv), best.yaml (a plain spec), Optuna's plots, and test scored once with
the best trial's checkpoint."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from homofit.errors import HomofitError, TrainingInterrupted

log = logging.getLogger("homofit")
STATE_FILE = "sweep.json"


class _TrialFailed(Exception):
    """A trial that could not run or finish (an invalid sampled spec, a non-finite loss): Optuna marks it
    failed and the sweep goes on."""


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise HomofitError("homofit sweep runs on Optuna: pip install 'homofit[sweep]' "
                           "(or pip install optuna)") from None
    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # homofit says itself which trial failed and why
    # heartbeats and stale-trial handling are marked experimental in Optuna; they are what a shared study needs
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# -- the plan: what to search, on which metric, where ----------------------------------------------------


def sweep_plan(config: Any) -> tuple[str, str]:
    """(metric, direction) of the sweep, checked against what the task reports on dev."""
    from homofit.tasks import build_task
    from homofit.train import check_selectable, has_dev, lower_is_better

    sweep = config.sweep
    if sweep is None:
        raise HomofitError("the spec has no sweep: section; add one, e.g.\n  sweep:\n    trials: 12\n    space:\n"
                           "      optim.lr: {log_uniform: [1.0e-5, 1.0e-3]}")
    if not has_dev(config):
        raise HomofitError("sweep: trials are chosen on dev, but the spec has no data.dev; set data.dev (test stays "
                           "unseen by the search).")
    task = build_task(config.task)
    metric = sweep.metric or config.train.early_stopping.metric or task.headline_metric
    check_selectable(metric, task, "sweep.metric", f"a metric the {task.name} task reports on dev")
    direction = sweep.direction or ("minimize" if lower_is_better(task, metric) else "maximize")
    return metric, direction


def base_spec(config: Any) -> dict[str, Any]:
    """The spec every trial starts from: the user's, without the sweep section."""
    from homofit.config import config_to_dict

    spec = config_to_dict(config)
    spec.pop("sweep", None)
    return spec


def with_values(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `spec` with each dotted key set to its value."""
    spec = json.loads(json.dumps(spec))
    for dotted, value in values.items():
        node = spec
        keys = dotted.split(".")
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = value
    return spec


def validated(spec: dict[str, Any], where: str) -> Any:
    from homofit.config import load_config

    try:
        return load_config(None, [], base=spec)
    except HomofitError as error:
        message = str(error).removeprefix("invalid spec:").strip()
        raise HomofitError(f"{where} gives an invalid spec: {message}") from None


def check_space(config: Any) -> None:
    """Every key of the space names a spec key, and every bound or choice makes a valid spec."""
    base = base_spec(config)
    for key, entry in config.sweep.space.items():
        kind, values = next(iter(entry.items()))
        for value in values:
            if kind == "choices" and not (value is None or isinstance(value, (bool, int, float, str))):
                raise HomofitError(f"sweep.space.{key}: choices must be numbers, strings, booleans or null "
                                   f"(Optuna's categorical values), not {value!r}.")
            validated(with_values(base, {key: value}), f"sweep.space.{key}: {value!r}")
    for index, point in enumerate(config.sweep.enqueue):
        unknown = sorted(set(point) - set(config.sweep.space))
        if unknown:
            raise HomofitError(f"sweep.enqueue[{index}]: {', '.join(unknown)} not in sweep.space; enqueue points of "
                               "the space only.")
        validated(with_values(base, point), f"sweep.enqueue[{index}]")
    if config.sweep.sampler == "grid":
        for key, entry in config.sweep.space.items():
            if next(iter(entry)) in {"log_uniform", "uniform"}:
                raise HomofitError(f"sweep.space.{key}: the grid sampler needs choices or int ranges; write "
                                   f"{key}: {{choices: [...]}} or use sampler: tpe or random.")


def trial_spec(base: dict[str, Any], params: dict[str, Any], metric: str, direction: str) -> dict[str, Any]:
    """What one trial trains: the base spec with the trial's values, test left out (the search must not see
    it), no scoring before fine-tuning, and the best checkpoint kept on the sweep's metric."""
    spec = with_values(base, params)
    spec["data"]["test"] = None
    spec["train"]["eval_before_training"] = False
    spec["train"].setdefault("early_stopping", {})
    spec["train"]["early_stopping"]["metric"] = metric
    spec["train"]["early_stopping"]["mode"] = "min" if direction == "minimize" else "max"
    return spec


def sweep_folder(config: Any, sweep_dir: Path | None) -> Path:
    from homofit.rundir import new_folder

    return new_folder(sweep_dir, config.output.dir, f"{config.output.name or config.task.type}-sweep", "--sweep-dir",
                      f"to continue that sweep use --resume {sweep_dir}.")


# -- Optuna -----------------------------------------------------------------------------------------------


def open_study(optuna: Any, url: str, name: str, direction: str, sweep: Any) -> Any:
    """The study in its storage, created by whichever worker comes first. Workers that start together may race
    to create the schema or the study; the loser retries and loads what the winner made."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(6):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                 heartbeat_interval=sweep.heartbeat_seconds,
                                                 grace_period=2 * sweep.heartbeat_seconds)
            return optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True,
                                       sampler=build_sampler(optuna, sweep), pruner=build_pruner(optuna, sweep))
        except ValueError as error:  # e.g. the study exists with another direction
            raise HomofitError(f"--study {name}: {error}") from None
        except Exception as error:  # noqa: BLE001 - SQLAlchemy's and the drivers' errors have no common base
            last = error
            time.sleep(0.5 * (attempt + 1))
    raise HomofitError(f"--storage {url}: cannot open the study storage ({type(last).__name__}: {last}); give an "
                       "SQLAlchemy URL such as sqlite:///sweep.db or postgresql://user:pass@host/db.")


def build_sampler(optuna: Any, sweep: Any) -> Any:
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=sweep.seed)
    if sweep.sampler == "grid":
        grid = {}
        for key, entry in sweep.space.items():
            kind, values = next(iter(entry.items()))
            grid[key] = list(range(values[0], values[1] + 1)) if kind == "int" else values
        return optuna.samplers.GridSampler(grid, seed=sweep.seed)
    return optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=max(1, sweep.startup_trials))


def build_pruner(optuna: Any, sweep: Any) -> Any:
    if sweep.pruner == "none":
        return optuna.pruners.NopPruner()
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.MedianPruner(n_startup_trials=sweep.startup_trials, n_warmup_steps=0)


def suggest(trial: Any, key: str, entry: dict[str, Any]) -> Any:
    kind, values = next(iter(entry.items()))
    if kind == "log_uniform":
        return trial.suggest_float(key, float(values[0]), float(values[1]), log=True)
    if kind == "uniform":
        return trial.suggest_float(key, float(values[0]), float(values[1]))
    if kind == "int":
        return trial.suggest_int(key, values[0], values[1])
    return trial.suggest_categorical(key, values)


def finished_count(optuna: Any, study: Any) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


# -- the sweep --------------------------------------------------------------------------------------------


def run_sweep(spec_path: Path | None, overrides: list[str], trials: int | None, storage_url: str | None,
              study_name: str | None, sweep_dir: Path | None, resume: Path | None, progress_factory: Any,
              console: Any) -> Path:
    """Run (or continue) the study until it holds the requested number of finished trials; returns the folder."""
    from homofit.config import config_to_dict, load_config

    optuna = import_optuna()
    if resume is not None:
        saved = _read_state(resume)
        spec_path = spec_path or resume / "spec.yaml"
        storage_url = storage_url or saved["storage"]
        study_name = study_name or saved["study"]
        folder = resume
    config = load_config(spec_path, overrides)
    metric, direction = sweep_plan(config)
    check_space(config)
    sweep = config.sweep
    target = trials or sweep.trials
    if resume is None:
        folder = sweep_folder(config, sweep_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "spec.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
        storage_url = storage_url or f"sqlite:///{(folder / 'optuna.db').absolute()}"
        study_name = study_name or folder.name
        _write_state(folder, {"storage": storage_url, "study": study_name, "metric": metric, "direction": direction})
    study = open_study(optuna, storage_url, study_name, direction, sweep)
    if not study.get_trials(deepcopy=False):
        for point in sweep.enqueue:
            study.enqueue_trial(point)
    optuna.storages.fail_stale_trials(study)  # trials whose worker died: failed, never counted
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_dir = Path(trial.user_attrs.get("run_dir", ""))
        if trial.user_attrs.get("run_dir") and run_dir.is_dir() and not (run_dir / "trial.json").exists():
            _write_trial(run_dir, trial.number, "FAIL", trial.params,
                         error="its worker stopped (killed, or lost its machine) before the trial finished")
    base = base_spec(config)
    failures: list[str] = []

    def objective(trial: Any) -> float:
        params = {key: suggest(trial, key, entry) for key, entry in sweep.space.items()}
        run_dir = folder / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        console.print(f"[bold]trial {trial.number}[/] "
                      + " ".join(f"{key}={value}" for key, value in params.items()), highlight=False)
        try:
            spec = validated(trial_spec(base, params, metric, direction), f"trial {trial.number}")
            return _run_trial(optuna, trial, spec, run_dir, params, metric, progress_factory)
        except TrainingInterrupted:
            _write_trial(run_dir, trial.number, "INTERRUPTED", params)
            raise
        except HomofitError as error:
            failures.append(str(error))
            trial.set_user_attr("error", str(error))
            _write_trial(run_dir, trial.number, "FAIL", params, error=str(error))
            log.warning("trial %d failed: %s", trial.number, error)
            raise _TrialFailed(str(error)) from None

    def enough(study: Any, _: Any) -> None:
        if finished_count(optuna, study) >= target or len(failures) >= max(3, target):
            study.stop()

    if finished_count(optuna, study) < target:
        try:
            study.optimize(objective, catch=(_TrialFailed,), callbacks=[enough], gc_after_trial=True)
        except TrainingInterrupted as stopped:  # SIGTERM or Ctrl-C inside a trial: that trial is failed
            raise TrainingInterrupted(f"the sweep stopped ({str(stopped).split(';')[0]}); the interrupted trial is "
                                      f"marked failed. Continue with: homofit sweep --resume {folder}") from None
    if len(failures) >= max(3, target) and finished_count(optuna, study) < target:
        raise HomofitError(f"sweep: {len(failures)} trials failed in a row of this worker; the first: {failures[0]}")
    write_results(optuna, study, config, folder, metric, direction, console)
    return folder


def _run_trial(optuna: Any, trial: Any, spec: Any, run_dir: Path, params: dict[str, Any], metric: str,
               progress_factory: Any) -> float:
    from homofit.train import train

    def report(step: int, scores: dict[str, Any]) -> None:
        trial.report(float(scores[metric]), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (dev {metric} {scores[metric]:.4f})")

    overrides = [f"{key}={value}" for key, value in params.items()]
    try:
        with progress_factory() as progress:
            summary = train(spec, run_dir, overrides, progress, on_eval=report)
    except optuna.TrialPruned as pruned:
        _write_trial(run_dir, trial.number, "PRUNED", params, note=str(pruned))
        log.info("trial %d %s", trial.number, pruned)
        raise
    value = summary.fit.best_score if summary is not None else None
    if value is None:
        raise HomofitError(f"trial {trial.number}: no dev evaluation happened; set train.eval_every so that dev is "
                           "scored at least once.")
    _write_trial(run_dir, trial.number, "COMPLETE", params, value=value, best_step=summary.fit.best_step)
    return float(value)


def _write_trial(run_dir: Path, number: int, state: str, params: dict[str, Any], **details: Any) -> None:
    """RUN/trial.json: what the study knows of this trial, so its run directory says it too."""
    if run_dir.is_dir():
        document = {"trial": number, "state": state, "params": params, **details}
        (run_dir / "trial.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    if not path.is_file():
        raise HomofitError(f"--resume {folder}: no {STATE_FILE} there; give the folder a sweep wrote.")
    return json.loads(path.read_text(encoding="utf-8"))


# -- results ----------------------------------------------------------------------------------------------


def write_results(optuna: Any, study: Any, config: Any, folder: Path, metric: str, direction: str,
                  console: Any) -> None:
    """trials.csv, the console table, best.yaml, Optuna's plots and the best trial's test score."""
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    keys = list(config.sweep.space)
    rows = []
    for trial in trials:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds() \
            if trial.datetime_complete and trial.datetime_start else None
        rows.append({"number": trial.number, "state": trial.state.name, metric: trial.value,
                     **{key: trial.params.get(key) for key in keys},
                     "seconds": round(duration, 1) if duration is not None else None,
                     "run_dir": trial.user_attrs.get("run_dir", "")})
    with (folder / "trials.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["number", "state", metric, *keys, "seconds", "run_dir"])
        writer.writeheader()
        writer.writerows(rows)
    table = Table(title=f"sweep {study.study_name}: dev {metric} ({direction})")
    for column in ("trial", "state", metric, *keys, "s"):
        table.add_column(column, justify="right" if column not in ("state",) else "left")
    for row in rows:
        table.add_row(str(row["number"]), row["state"], _cell(row[metric]), *[_cell(row[key]) for key in keys],
                      _cell(row["seconds"]))
    console.print(table)
    complete = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        console.print("no trial completed, so there is no best.yaml.")
        return
    best = study.best_trial
    best_spec = with_values(base_spec(config), best.params)
    (folder / "best.yaml").write_text(yaml.safe_dump(best_spec, sort_keys=False), encoding="utf-8")
    best_run = Path(best.user_attrs.get("run_dir", ""))
    summary = {"best_trial": best.number, "dev": {metric: best.value}, "params": best.params,
               "run_dir": str(best_run), "trials": len(trials), "complete": len(complete),
               "pruned": sum(trial.state == optuna.trial.TrialState.PRUNED for trial in trials),
               "failed": sum(trial.state == optuna.trial.TrialState.FAIL for trial in trials)}
    console.print(f"best: trial {best.number}, dev {metric} {best.value:.4f} with "
                  + ", ".join(f"{key}={value}" for key, value in best.params.items()), highlight=False)
    if config.sweep.test_best and config.data.test is not None:
        summary["test"] = _test_best(best_run, config, folder, console)
    (folder / "best.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _plots(study, folder)
    console.print(f"wrote {folder}/trials.csv, best.yaml, best.json", highlight=False)


def _test_best(best_run: Path, config: Any, folder: Path, console: Any) -> dict[str, Any] | None:
    """Test, once: the best trial's checkpoint on data.test (no trial ever read it)."""
    from homofit.inference import eval_checkpoint
    from homofit.tasks import task_class

    checkpoint = best_run / "checkpoints" / "best"
    if not checkpoint.is_dir():
        console.print(f"the best trial's checkpoint is not on this machine ({checkpoint}); score test where it ran "
                      "with homofit eval.", highlight=False)
        return None
    out = folder / "best-test"
    if out.exists():
        return json.loads((out / "test.json").read_text(encoding="utf-8")) if (out / "test.json").is_file() else None
    _, report = eval_checkpoint(checkpoint, Path(config.data.test), "test", out)
    headline = task_class(config.task.type).headline(report)
    console.print("test with the best trial: " + ", ".join(f"{key} {value:.4f}" for key, value in headline.items()),
                  highlight=False)
    return headline


def _plots(study: Any, folder: Path) -> None:
    """Optuna's own matplotlib figures; a figure that cannot be drawn for this study is skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as figures
    except ImportError:
        return
    import warnings

    for name, draw in (("history", figures.plot_optimization_history), ("importances", figures.plot_param_importances),
                       ("slice", figures.plot_slice)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = draw(study)
                figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
                figure.tight_layout()
                figure.savefig(folder / f"sweep.{name}.png", dpi=110)
            plt.close(figure)
        except (ValueError, RuntimeError, ImportError, ZeroDivisionError) as error:
            log.info("sweep.%s.png not drawn: %s", name, error)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
