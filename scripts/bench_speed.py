"""Training speed and peak memory of homofit and the Hugging Face Trainer recipe, side by side.

Every variant trains the same model on the same NER data with the same batch size for the same number of
optimizer steps, each in a fresh process, without dev evaluation:

    homofit:random      homofit with train.batching random (a plain shuffle)
    homofit:by_length   homofit's length buckets (shuffled groups of 50 batches sorted by length)
    trainer:random      the Trainer recipe (scripts/reference_ner.py) with its defaults
    trainer:by_length   the Trainer with its length grouping (group_by_length, its best setting)

and, when asked for, homofit variants with `+bf16` (train.precision bf16) or `+compile` (train.compile), e.g.
`homofit:by_length+bf16`. Throughput is measured the same way for all: wall time between optimizer steps that
are multiples of --log-every, after the first --skip-windows windows (start-up, first allocations), with the
device synchronized at each window's end; loading, tokenizing and saving are outside it. Real tokens are the
non-pad tokens the model saw (its attention mask, counted by a forward hook on the device, read once at the
end); model FLOP/s is 6 x parameters x real tokens/s. Peak memory is torch.cuda.max_memory_allocated on CUDA
and the process's peak RSS on the CPU, over the whole process (load, train, save).

With --e2e it also times whole commands: `homofit train SPEC` (random batches, as homofit trained before
length buckets, and the spec as it is, with a cold and then a warm feature cache) against the Trainer recipe
doing the same (load, tokenize, train, evaluate dev and test, save).

With --before REV it times whole `homofit train SPEC` commands of homofit as it was at the git revision REV
(its package exported from this repository's history, run with this Python and this venv's packages)
against homofit now: --pairs pairs (before first in odd pairs, now first in even ones), each command with an
empty feature cache, the same spec and working directory, and prints each pair's wall times and test F1 with the
ratio.

    python scripts/bench_speed.py --device cpu --steps 60 --batch-size 16
    python scripts/bench_speed.py --e2e-only --spec configs/quickstart.yaml
    python scripts/bench_speed.py --before 22306f6 --pairs 3 --spec configs/quickstart.yaml
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

DEFAULT_VARIANTS = "homofit:random,homofit:by_length,trainer:random,trainer:by_length"


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    tool, _, rest = text.partition(":")
    batching, *options = rest.split("+")
    if tool not in ("homofit", "trainer") or batching not in ("random", "by_length") or \
            any(option not in ("bf16", "compile") for option in options) or (tool == "trainer" and options):
        raise SystemExit(f"bench_speed.py: unknown variant {text!r}; e.g. homofit:by_length+bf16, trainer:random")
    return tool, batching, options


def spec_overrides(args: argparse.Namespace, batching: str, options: list[str]) -> list[str]:
    """The spec's training run cut down to the benchmark: train split only, fixed step count."""
    overrides = [f"model.name_or_path={args.model}"] if args.model else []
    precision = "bf16" if "bf16" in options else args.precision
    overrides += [
        f"data.train={args.train}", "data.dev=null", "data.test=null",
        f"train.max_steps={args.steps}", f"train.batch_size={args.batch_size}",
        f"train.device={args.device}", f"train.precision={precision}",
        "train.eval_before_training=false", f"train.log_every={args.log_every}", f"train.batching={batching}",
    ]
    if "compile" in options:
        overrides.append("train.compile=true")
    return overrides


class TokenCounter:
    """Counts, per forward pass, the real (attention mask) and padded tokens, on the device: no sync per step."""

    def __init__(self, model: Any) -> None:
        self.real: list[Any] = []
        self.padded: list[int] = []
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        if mask is None:
            return
        self.real.append(mask.sum())
        self.padded.append(mask.numel())

    def per_step(self) -> tuple[list[int], list[int]]:
        import torch

        real = torch.stack(self.real).tolist() if self.real else []
        return [int(count) for count in real], self.padded


def steady_throughput(windows: list[tuple[int, float]], real: list[int], padded: list[int], batch_size: int,
                      skip: int, parameters: int) -> dict[str, float]:
    """Samples, real tokens and FLOP per second over the timed windows after the first `skip`; windows are
    (steps, seconds) in order, and real/padded hold one count per optimizer step (one forward each)."""
    kept = windows[skip:]
    if not kept:
        raise SystemExit(f"bench_speed.py: only {len(windows)} timed windows; raise --steps above "
                         f"{(skip + 1)} x log_every.")
    first = sum(count for count, _ in windows[:skip])
    steps = sum(count for count, _ in kept)
    seconds = sum(duration for _, duration in kept)
    tokens = sum(real[first : first + steps])
    slots = sum(padded[first : first + steps])
    return {"samples_per_s": batch_size * steps / seconds, "real_tokens_per_s": tokens / seconds,
            "real_token_share": tokens / slots if slots else float("nan"),
            "model_tflop_per_s": 6 * parameters * tokens / seconds / 1e12, "timed_steps": steps, "timed_s": seconds}


def peak_memory_mib(device: str) -> tuple[float, str]:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, "peak RSS"


# -- one variant in this process ------------------------------------------------------------------------


def run_homofit(args: argparse.Namespace, scratch: Path, batching: str, options: list[str]) -> dict[str, Any]:
    from homofit.cli import quiet_transformers
    from homofit.config import load_config
    from homofit.train import fit, new_train_state, setup

    os.environ["HOMOFIT_CACHE_DIR"] = str(scratch / "cache")  # a cold cache: tokenizing is outside the timing
    config = load_config(args.spec, spec_overrides(args, batching, options))
    quiet_transformers()
    experiment = setup(config, scratch / "homofit-run", [])
    counter = TokenCounter(experiment.model)
    fit(experiment, new_train_state(experiment))
    events = [json.loads(line) for line in experiment.run.metrics.read_text().splitlines()]
    windows, previous = [], 0
    for event in events:
        if event["event"] == "train":
            steps = event["step"] - previous
            windows.append((steps, steps / event["steps_per_s"]))
            previous = event["step"]
    real, padded = counter.per_step()
    return {"windows": windows, "real": real, "padded": padded, "steps": previous,
            "parameters": sum(parameter.numel() for parameter in experiment.model.parameters()),
            "runtime": experiment.runtime.describe()}


def run_trainer(args: argparse.Namespace, scratch: Path, batching: str, options: list[str]) -> dict[str, Any]:
    import torch
    from reference_ner import build_trainer, settings_from_spec
    from transformers import TrainerCallback
    from transformers.utils import logging as transformers_logging

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
    settings = settings_from_spec(args.spec, spec_overrides(args, batching, options), args.model)
    trainer, _ = build_trainer(settings, scratch / "reference-run", evaluate=False)
    counter = TokenCounter(trainer.model)
    timer = WindowTimer(args.log_every)
    trainer.add_callback(timer)
    output = trainer.train()
    trainer.save_model(str(scratch / "reference-model"))  # as run_ner.py ends, and as homofit saves its checkpoints
    real, padded = counter.per_step()
    return {"windows": timer.windows, "real": real, "padded": padded, "steps": trainer.state.global_step,
            "parameters": sum(parameter.numel() for parameter in trainer.model.parameters()),
            "trainer_samples_per_s": output.metrics.get("train_samples_per_second"),
            "runtime": f"{trainer.args.device}, {'bf16' if trainer.args.bf16 else 'fp32'}"}


def worker(args: argparse.Namespace) -> None:
    """One variant in this fresh process, so the peak memory counters hold its run alone."""
    tool, batching, options = parse_variant(args.worker)
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as scratch:
        run = run_homofit if tool == "homofit" else run_trainer
        result = run(args, Path(scratch), batching, options)
    memory, memory_kind = peak_memory_mib(args.device)
    result.update(steady_throughput(result["windows"], result["real"], result["padded"], args.batch_size,
                                    args.skip_windows, result["parameters"]))
    result.update({"peak_memory_mib": memory, "memory_kind": memory_kind})
    args.result.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# -- end to end -----------------------------------------------------------------------------------------


def end_to_end(args: argparse.Namespace, scratch: Path) -> dict[str, dict[str, Any]]:
    """Wall time of whole training commands on the spec as written (dev, test, saves included)."""
    homofit = [sys.executable, "-m", "homofit.cli", "train", str(args.spec)]
    model = ["--model", args.model] if args.model else []
    if args.model:
        homofit.append(f"model.name_or_path={args.model}")
    env = {**os.environ, "HOMOFIT_CACHE_DIR": str(scratch / "e2e-cache"), "HF_HUB_OFFLINE": "1"}
    commands = {
        "homofit, random batches": [*homofit, "train.batching=random", "data.cache=false", "--run-dir",
                                    str(scratch / "e2e-random")],
        "homofit, the spec (cold cache)": [*homofit, "--run-dir", str(scratch / "e2e-cold")],
        "homofit, the spec (warm cache)": [*homofit, "--run-dir", str(scratch / "e2e-warm")],
        "Trainer recipe": [sys.executable, str(REPO_ROOT / "scripts" / "reference_ner.py"), str(args.spec),
                           "--out", str(scratch / "e2e-reference.json"), "--output-dir", str(scratch / "e2e-trainer"),
                           *model],
    }
    results = {}
    for name, command in commands.items():
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        results[name] = {"wall_s": round(time.perf_counter() - started, 1)}
        if name.startswith("homofit"):
            run = Path(command[command.index("--run-dir") + 1])
            results[name]["test"] = json.loads((run / "reports" / "test.json").read_text()).get("f1")
        else:
            results[name]["test"] = json.loads((scratch / "e2e-reference.json").read_text())["test"].get("f1")
        print(f"e2e {name}: {results[name]['wall_s']} s, test F1 {results[name]['test']}", flush=True)
    return results


def before_and_now(args: argparse.Namespace, scratch: Path) -> str:
    """Pairs of whole `homofit train SPEC` commands, the package at args.before and now, in alternating order."""
    before_tree = scratch / "before"
    before_tree.mkdir()
    archive = subprocess.run(["git", "archive", args.before, "homofit"], cwd=REPO_ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(before_tree)], input=archive, check=True)
    trees = {"before": before_tree, "now": REPO_ROOT}
    for label, tree in trees.items():  # each command must import the package of its own tree
        found = subprocess.run([sys.executable, "-P", "-c", "import homofit; print(homofit.__file__)"],
                               env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
        if not Path(found.stdout.strip()).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"bench_speed.py: the {label} command would import homofit from {found.stdout.strip()}, "
                             f"not from {tree}")
    title = (f"End to end, `{os.path.relpath(args.spec, REPO_ROOT)}`: homofit at {args.before} (before) and now, "
             "before first in odd pairs and now first in even ones, each with an empty feature cache")
    lines = [title, "",
             "| pair | before, wall s | now, wall s | before / now | test F1 before | test F1 now |",
             "|---:|---:|---:|---:|---:|---:|"]
    walls: dict[str, list[float]] = {"before": [], "now": []}
    for pair in range(1, args.pairs + 1):
        row = {}
        # odd pairs run before, then now; even pairs the other way round, so that neither side always runs
        # after the other (on a noisy machine the second command of a pair can be the slower one)
        for label, tree in (list(trees.items()) if pair % 2 else list(trees.items())[::-1]):
            run = scratch / f"{label}-{pair}"
            env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1",
                   "HOMOFIT_CACHE_DIR": str(scratch / f"cache-{label}-{pair}")}
            started = time.perf_counter()
            # -P: the working directory (this checkout) is not put before PYTHONPATH
            subprocess.run([sys.executable, "-P", "-m", "homofit.cli", "train", str(args.spec), "--run-dir", str(run)],
                           check=True, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            walls[label].append(wall)
            row[label] = (wall, json.loads((run / "reports" / "test.json").read_text()).get("f1"))
            print(f"pair {pair} {label}: {wall:.1f} s, test F1 {row[label][1]:.4f}", flush=True)
        lines.append(f"| {pair} | {row['before'][0]:.1f} | {row['now'][0]:.1f} | "
                     f"{row['before'][0] / row['now'][0]:.2f}x | {row['before'][1]:.4f} | {row['now'][1]:.4f} |")
    before, now = (sum(walls[label]) / len(walls[label]) for label in ("before", "now"))
    lines.append(f"| mean | {before:.1f} | {now:.1f} | {before / now:.2f}x | | |")
    return "\n".join(lines) + "\n"


# -- all variants, and the table --------------------------------------------------------------------------


def machine_description(device: str) -> dict[str, str]:
    import platform

    import torch
    import transformers

    described = {"python": platform.python_version(), "torch": torch.__version__,
                 "transformers": transformers.__version__, "cpu_cores": str(os.cpu_count()),
                 "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg())}
    if device == "cuda":
        described["gpu"] = torch.cuda.get_device_name()
    return described


def format_table(args: argparse.Namespace, results: dict[str, dict[str, Any]], machine: dict[str, str]) -> str:
    names = list(results)
    memory_kind = next(iter(results.values()))["memory_kind"]
    lines = [
        (f"{args.steps} optimizer steps, batch {args.batch_size}, {args.device}, {args.precision}; train data "
         f"{os.path.relpath(args.train, REPO_ROOT)}; timed steps {results[names[0]]['timed_steps']} (first "
         f"{args.skip_windows} x {args.log_every} steps left out)"),
        "; ".join(f"{key} {value}" for key, value in machine.items()),
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    rows = [("samples/s", "samples_per_s", "{:.1f}"), ("real tokens/s", "real_tokens_per_s", "{:.0f}"),
            ("real share of the tokens", "real_token_share", "{:.2f}"),
            ("model TFLOP/s (6 x params x real tokens)", "model_tflop_per_s", "{:.3f}"),
            (f"peak memory, MiB ({memory_kind})", "peak_memory_mib", "{:.0f}")]
    for label, key, pattern in rows:
        lines.append(f"| {label} | " + " | ".join(pattern.format(results[name][key]) for name in names) + " |")
    lines.append("")
    for name in names:
        if not name.startswith("homofit"):
            continue
        for reference in ("trainer:random", "trainer:by_length"):
            if reference in results:
                speed = results[name]["samples_per_s"] / results[reference]["samples_per_s"]
                memory = results[name]["peak_memory_mib"] / results[reference]["peak_memory_mib"]
                lines.append(f"- {name} / {reference}: {speed:.2f}x samples/s, {memory:.2f}x peak memory")
    return "\n".join(lines) + "\n"


def format_e2e(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> str:
    baseline = results["homofit, random batches"]["wall_s"]
    title = (f"End to end, `{os.path.relpath(args.spec, REPO_ROOT)}` as written (load, tokenize, train, evaluate, "
             "test, save):")
    lines = [title, "", "| command | wall s | test F1 | speed-up over random batches |", "|---|---:|---:|---:|"]
    for name, result in results.items():
        lines.append(f"| {name} | {result['wall_s']:.1f} | {result['test']:.4f} | {baseline / result['wall_s']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=REPO_ROOT / "configs" / "wnut17.yaml",
                        help="The NER spec whose model and hyperparameters every variant uses.")
    parser.add_argument("--train", type=Path, default=REPO_ROOT.parent / "shared/data/wnut17/wnut17train.conll",
                        help="CoNLL training file (default: the full WNUT-17 train split).")
    parser.add_argument("--model", help="A model folder; default: the spec's model.name_or_path.")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"Comma-separated (default {DEFAULT_VARIANTS}); homofit ones take +bf16, +compile.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--log-every", type=int, default=10, help="Steps per timed window.")
    parser.add_argument("--skip-windows", type=int, default=1, help="Leading windows left out of the timing.")
    parser.add_argument("--e2e", action="store_true", help="Also time whole `homofit train SPEC` commands.")
    parser.add_argument("--e2e-only", action="store_true", help="Only the end-to-end commands.")
    parser.add_argument("--before", metavar="REV",
                        help="Time whole commands of homofit at this git revision against now (no variants).")
    parser.add_argument("--pairs", type=int, default=3, help="With --before: pairs of commands, in alternating order.")
    parser.add_argument("--out", type=Path, help="Write bench_speed.json and bench_speed.md here.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not args.train.is_file() and not (args.e2e_only or args.before):
        raise SystemExit(f"bench_speed.py: --train {args.train} not found.")
    args.spec, args.train = args.spec.resolve(), args.train.resolve()
    if args.model is not None and Path(args.model).is_dir():
        args.model = str(Path(args.model).resolve())
    variants = [text.strip() for text in args.variants.split(",") if text.strip()]
    if args.e2e_only or args.before:
        variants = []
    for variant in variants:
        parse_variant(variant)

    results: dict[str, dict[str, Any]] = {}
    e2e: dict[str, dict[str, Any]] = {}
    pairs = ""
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as scratch:
        if args.before:
            pairs = before_and_now(args, Path(scratch))
        for variant in variants:
            result_path = Path(scratch) / f"{variant.replace(':', '-').replace('+', '-')}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, "--result", str(result_path),
                       "--spec", str(args.spec), "--train", str(args.train), "--device", args.device,
                       "--precision", args.precision, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--log-every", str(args.log_every), "--skip-windows", str(args.skip_windows)]
            if args.model:
                command += ["--model", args.model]
            started = time.perf_counter()
            subprocess.run(command, check=True, cwd=REPO_ROOT)
            results[variant] = json.loads(result_path.read_text())
            results[variant]["process_wall_s"] = round(time.perf_counter() - started, 1)
            result = results[variant]
            print(f"{variant}: {result['samples_per_s']:.1f} samples/s, {result['real_tokens_per_s']:.0f} real "
                  f"tokens/s, {result['peak_memory_mib']:.0f} MiB, process {result['process_wall_s']} s", flush=True)
        if args.e2e or args.e2e_only:
            e2e = end_to_end(args, Path(scratch))
    machine = machine_description(args.device)
    table = format_table(args, results, machine) if results else "; ".join(f"{k} {v}" for k, v in machine.items())
    if e2e:
        table += "\n" + format_e2e(args, e2e)
    if pairs:
        table += "\n" + pairs
    print()
    print(table, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        settings = {key: str(value) for key, value in vars(args).items() if key not in {"worker", "result", "out"}}
        record = {"settings": settings, "machine": machine, "results": results, "end_to_end": e2e,
                  "before_and_now": pairs}
        (args.out / "bench_speed.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (args.out / "bench_speed.md").write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
