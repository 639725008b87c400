"""Training speed and peak memory of homofit and the plain Hugging Face Trainer recipe, side by side.

Both train the same model on the same NER data with the same batch size for the same number of optimizer
steps, each in a fresh process, without dev evaluation. Throughput is measured the same way for both: wall
time between optimizer steps that are multiples of train.log_every (10), after the first such window (start-up,
first-batch allocation), with the device synchronized at each window's end; loading, tokenizing and saving
are outside it. Peak memory is torch.cuda.max_memory_allocated on CUDA and the process's peak RSS on the CPU,
over the whole process: loading, training and saving the trained model (homofit saves `best` and `last`,
the Trainer recipe its final model).

    python scripts/bench_speed.py --device cpu --steps 60 --batch-size 16
    python scripts/bench_speed.py --device cuda --precision bf16 --steps 300 --batch-size 32 --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

TOOLS = ("homofit", "reference")


def spec_overrides(args: argparse.Namespace) -> list[str]:
    """The spec's training run cut down to the benchmark: train split only, fixed step count."""
    overrides = [f"model.name_or_path={args.model}"] if args.model else []
    return overrides + [
        f"data.train={args.train}", "data.dev=null", "data.test=null",
        f"train.max_steps={args.steps}", f"train.batch_size={args.batch_size}",
        f"train.device={args.device}", f"train.precision={args.precision}",
        "train.eval_before_training=false", f"train.log_every={args.log_every}",
        f"train.batching={args.batching}",  # by_length: homofit's length buckets, the Trainer's group_by_length
    ]


def steady_throughput(windows: list[tuple[int, float]], batch_size: int, skip: int) -> dict[str, float]:
    """Samples per second over the timed windows after the first `skip`; windows are (steps, seconds)."""
    kept = windows[skip:]
    if not kept:
        raise SystemExit(f"bench_speed.py: only {len(windows)} timed windows; raise --steps above "
                         f"{(skip + 1)} x log_every.")
    steps = sum(count for count, _ in kept)
    seconds = sum(duration for _, duration in kept)
    return {"samples_per_s": batch_size * steps / seconds, "timed_steps": steps, "timed_s": seconds}


def peak_memory_mib(device: str) -> tuple[float, str]:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, "peak RSS"


# -- one tool in this process ---------------------------------------------------------------------------


def run_homofit(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    import io

    from rich.console import Console

    from homofit.cli import quiet_transformers
    from homofit.config import load_config
    from homofit.reporting import train_progress
    from homofit.train import fit, new_train_state, setup

    config = load_config(args.spec, spec_overrides(args))
    quiet_transformers()
    experiment = setup(config, scratch / "homofit-run", [])
    with train_progress(Console(file=io.StringIO())) as progress:
        fit(experiment, new_train_state(experiment), progress)
    events = [json.loads(line) for line in experiment.run.metrics.read_text().splitlines()]
    windows, previous = [], 0
    for event in events:
        if event["event"] == "train":
            steps = event["step"] - previous
            windows.append((steps, steps / event["steps_per_s"]))
            previous = event["step"]
    return {"windows": windows, "steps": previous, "runtime": experiment.runtime.describe()}


def run_reference(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    import torch
    from transformers import TrainerCallback
    from transformers.utils import logging as transformers_logging

    from reference_ner import build_trainer, settings_from_spec

    class WindowTimer(TrainerCallback):
        """Times each log_every optimizer steps, synchronizing the device as homofit's loss read-out does."""

        def __init__(self, every: int) -> None:
            self.every = every
            self.windows: list[tuple[int, float]] = []
            self.start = 0.0

        def on_train_begin(self, *unused: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, unused_args: Any, state: Any, *unused: Any, **kwargs: Any) -> None:
            if state.global_step % self.every:
                return
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            now = time.perf_counter()
            self.windows.append((self.every, now - self.start))
            self.start = now

    transformers_logging.set_verbosity_error()
    settings = settings_from_spec(args.spec, spec_overrides(args), args.model)
    trainer, _ = build_trainer(settings, scratch / "reference-run", evaluate=False)
    timer = WindowTimer(args.log_every)
    trainer.add_callback(timer)
    output = trainer.train()
    trainer.save_model(str(scratch / "reference-model"))  # as run_ner.py ends, and as homofit saves its checkpoints
    return {"windows": timer.windows, "steps": trainer.state.global_step,
            "trainer_samples_per_s": output.metrics.get("train_samples_per_second"),
            "runtime": f"{trainer.args.device}, {'bf16' if trainer.args.bf16 else 'fp32'}"}


def worker(args: argparse.Namespace) -> None:
    """One tool in this fresh process, so the peak memory counters hold its run alone."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.worker}-") as scratch:
        run = run_homofit if args.worker == "homofit" else run_reference
        result = run(args, Path(scratch))
    memory, memory_kind = peak_memory_mib(args.device)
    result.update(steady_throughput(result["windows"], args.batch_size, args.skip_windows))
    result.update({"peak_memory_mib": memory, "memory_kind": memory_kind})
    args.result.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# -- both, and the table ----------------------------------------------------------------------------------


def machine_description(device: str) -> dict[str, str]:
    import platform

    import torch
    import transformers

    described = {"python": platform.python_version(), "torch": torch.__version__,
                 "transformers": transformers.__version__, "cpu_cores": str(os.cpu_count())}
    if device == "cuda":
        described["gpu"] = torch.cuda.get_device_name()
    return described


def format_table(args: argparse.Namespace, results: dict[str, dict[str, Any]], machine: dict[str, str]) -> str:
    homofit, reference = results["homofit"], results["reference"]
    memory_kind = homofit["memory_kind"]
    lines = [
        f"{args.steps} optimizer steps, batch {args.batch_size}, {args.device}, {args.precision}, batching "
        f"{args.batching} (the Trainer: group_by_length={args.batching == 'by_length'}); "
        f"train data {os.path.relpath(args.train, REPO_ROOT)}; timed steps {homofit['timed_steps']} "
        f"(first {args.skip_windows} x {args.log_every} steps left out)",
        "; ".join(f"{key} {value}" for key, value in machine.items()),
        "",
        "| | homofit | HF Trainer | homofit / Trainer |",
        "|---|---:|---:|---:|",
        f"| training samples/s | {homofit['samples_per_s']:.1f} | {reference['samples_per_s']:.1f} | "
        f"{homofit['samples_per_s'] / reference['samples_per_s']:.2f} |",
        f"| peak memory, MiB ({memory_kind}) | {homofit['peak_memory_mib']:.0f} | {reference['peak_memory_mib']:.0f} | "
        f"{homofit['peak_memory_mib'] / reference['peak_memory_mib']:.2f} |",
    ]
    if reference.get("trainer_samples_per_s"):
        lines.append("")
        lines.append(f"(Trainer's own train_samples_per_second over all {reference['steps']} steps, "
                     f"start-up included: {reference['trainer_samples_per_s']:.1f})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=REPO_ROOT / "configs" / "wnut17.yaml",
                        help="The NER spec whose model and hyperparameters both tools use.")
    parser.add_argument("--train", type=Path, default=REPO_ROOT.parent / "shared/data/wnut17/wnut17train.conll",
                        help="CoNLL training file (default: the full WNUT-17 train split).")
    parser.add_argument("--model", help="A model folder; default: the spec's model.name_or_path.")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batching", choices=["random", "by_length"], default="random",
                        help="by_length: homofit's train.batching by_length against the Trainer's group_by_length.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--log-every", type=int, default=10, help="Steps per timed window.")
    parser.add_argument("--skip-windows", type=int, default=1, help="Leading windows left out of the timing.")
    parser.add_argument("--out", type=Path, help="Write bench_speed.json and bench_speed.md here.")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.train.is_file():
        raise SystemExit(f"bench_speed.py: --train {args.train} not found.")
    if args.worker:
        worker(args)
        return
    args.spec, args.train = args.spec.resolve(), args.train.resolve()
    if args.model is not None:
        args.model = str(Path(args.model).resolve())

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as scratch:
        for tool in TOOLS:
            result_path = Path(scratch) / f"{tool}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--result", str(result_path),
                       "--spec", str(args.spec), "--train", str(args.train), "--device", args.device,
                       "--precision", args.precision, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--log-every", str(args.log_every), "--skip-windows", str(args.skip_windows),
                       "--batching", args.batching]
            if args.model:
                command += ["--model", args.model]
            started = time.perf_counter()
            subprocess.run(command, check=True, cwd=REPO_ROOT)
            results[tool] = json.loads(result_path.read_text())
            results[tool]["process_wall_s"] = round(time.perf_counter() - started, 1)
            result = results[tool]
            print(f"{tool}: {result['samples_per_s']:.1f} samples/s, {result['peak_memory_mib']:.0f} MiB, "
                  f"process {result['process_wall_s']} s", flush=True)
    machine = machine_description(args.device)
    table = format_table(args, results, machine)
    print()
    print(table, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        settings = {key: str(value) for key, value in vars(args).items() if key not in {"worker", "result", "out"}}
        record = {"settings": settings, "machine": machine, "results": results}
        (args.out / "bench_speed.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (args.out / "bench_speed.md").write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
