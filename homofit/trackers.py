"""Experiment trackers (`output.loggers`): TensorBoard, MLflow and Weights & Biases, each written through its
own library, imported only when a spec asks for it. metrics.jsonl is always written; a tracker gets the same
events: training loss, learning rate and throughput, every evaluation's metrics, the resolved spec as
hyperparameters, and the final scores."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Protocol

from homofit.errors import HomofitError

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
STATE_FILE = "trackers.json"  # the tracker's own run ids, so a resumed run continues the same tracked run


class Tracker(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def close(self, final_scores: dict[str, float], status: str) -> None: ...


def check_trackers(loggers: list[str]) -> None:
    """Before any work: every tracker asked for can be imported."""
    for name in loggers:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            extra = "mlflow-skinny (or mlflow)" if name == "mlflow" else PACKAGES[name]
            raise HomofitError(f"output.loggers: {name} needs the {PACKAGES[name]} package, which is not installed; "
                               f"pip install {extra}, or remove {name} from output.loggers.")


def flat_spec(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The spec as dotted keys with plain values (what trackers take as hyperparameters)."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_spec(value, f"{name}."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def open_trackers(config: Any, spec: dict[str, Any], run_root: Path, run_name: str) -> list[Tracker]:
    saved_path = run_root / STATE_FILE
    saved = json.loads(saved_path.read_text(encoding="utf-8")) if saved_path.is_file() else {}
    hyperparameters = flat_spec(spec)
    trackers: list[Tracker] = []
    for name in config.output.loggers:
        if name == "tensorboard":
            trackers.append(TensorBoardTracker(run_root / "tensorboard", hyperparameters))
        elif name == "mlflow":
            trackers.append(MlflowTracker(config, run_root, run_name, hyperparameters, saved))
        elif name == "wandb":
            trackers.append(WandbTracker(config, run_root, run_name, spec, saved))
    if saved:
        saved_path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    return trackers


class TensorBoardTracker:
    """Scalars under tensorboard/ in the run directory; the spec as text, and hyperparameters with the final
    scores in TensorBoard's HParams view."""

    def __init__(self, folder: Path, hyperparameters: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))
        self.hyperparameters = hyperparameters
        self.writer.add_text("spec", "\n".join(f"    {key}: {value}" for key, value in hyperparameters.items()))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def close(self, final_scores: dict[str, float], status: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(self.hyperparameters, final_scores):
            self.writer.file_writer.add_summary(summary)
        for key, value in final_scores.items():
            self.writer.add_scalar(key, value)
        self.writer.close()


class MlflowTracker:
    """A run in the experiment named output.name (or the task type) at output.mlflow_tracking_uri (default:
    MLFLOW_TRACKING_URI, else sqlite:///OUTPUT_DIR/mlflow.db), through MlflowClient (no global state)."""

    def __init__(self, config: Any, run_root: Path, run_name: str, hyperparameters: dict[str, Any],
                 saved: dict[str, Any]) -> None:
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its database set-up lines on the console
        uri = config.output.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or \
            f"sqlite:///{Path(config.output.dir).absolute() / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        experiment_name = config.output.name or config.task.type
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
        if saved.get("mlflow_run_id"):
            self.run_id = saved["mlflow_run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=run_name, tags={"homofit.run_dir": str(run_root)})
            self.run_id = saved["mlflow_run_id"] = run.info.run_id
            from mlflow.entities import Param

            items = [Param(key, str(value)[:6000]) for key, value in hyperparameters.items()]
            for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters a batch
                self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, value, now, step) for key, value in metrics.items()])

    def close(self, final_scores: dict[str, float], status: str) -> None:
        if final_scores:
            self.log_metrics(final_scores, 0)
        self.client.set_terminated(self.run_id, status={"finished": "FINISHED", "interrupted": "KILLED"}.get(status,
                                                                                                           "FAILED"))


class WandbTracker:
    """A W&B run in output.wandb_project, offline unless output.wandb_mode is online (files under wandb/ in
    the run directory; `wandb sync` uploads them later)."""

    def __init__(self, config: Any, run_root: Path, run_name: str, spec: dict[str, Any], saved: dict[str, Any]) -> None:
        import secrets

        import wandb

        run_id = saved.get("wandb_run_id") or secrets.token_hex(4)  # W&B run ids: lowercase letters and digits
        saved["wandb_run_id"] = run_id
        self.run = wandb.init(project=config.output.wandb_project, name=run_name, id=run_id, resume="allow",
                              dir=str(run_root), mode=config.output.wandb_mode, config=spec,
                              settings=wandb.Settings(silent=True, console="off"))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self, final_scores: dict[str, float], status: str) -> None:
        for key, value in final_scores.items():
            self.run.summary[key] = value
        self.run.finish(exit_code=0 if status == "finished" else 1)
