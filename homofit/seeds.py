"""`homofit train CONFIG --seeds 1,2,3`: the same spec once per seed, one after the other, each in its own run
directory, and a summary of them (mean and standard deviation of each headline score, and the comparison
of the runs), so a result is stated with its seed-to-seed noise."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from homofit.errors import HomofitError


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HomofitError(f"--seeds {text}: give whole numbers separated by commas, e.g. --seeds 1,2,3") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise HomofitError(f"--seeds {text}: give at least two different seeds, e.g. --seeds 1,2,3")
    return seeds


def seeds_folder(config: Any, run_dir: Path | None) -> Path:
    """--run-dir DIR, or <output.dir>/<name>-seeds-<time>; it must not hold anything yet."""
    from homofit.rundir import new_folder

    return new_folder(run_dir, config.output.dir, f"{config.output.name or config.task.type}-seeds")


def train_seeds(spec_path: Path, overrides: list[str], seeds: list[int], run_dir: Path | None, progress_factory: Any,
                console: Any) -> Path:
    """Train once per seed into FOLDER/seed-N, then write FOLDER/summary; returns FOLDER."""
    from homofit.compare import compare, load_models, print_summary, write_outputs
    from homofit.config import load_config
    from homofit.tasks import task_class
    from homofit.train import train

    specs = {seed: load_config(spec_path, [*overrides, f"train.seed={seed}"]) for seed in seeds}  # all valid first
    folder = seeds_folder(specs[seeds[0]], run_dir)
    scores: dict[int, dict[str, dict[str, Any]]] = {}
    for seed in seeds:
        console.print(f"[bold]seed {seed}[/] ({seeds.index(seed) + 1} of {len(seeds)})")
        with progress_factory() as progress:
            summary = train(specs[seed], folder / f"seed-{seed}", [*overrides, f"train.seed={seed}"], progress)
        if summary is None:
            return folder  # not the main process of a distributed run
        scores[seed] = summary.scores
    split = "test" if all("test" in score for score in scores.values()) else "dev"
    out = folder / "summary"
    out.mkdir(parents=True, exist_ok=True)
    headline = task_class(specs[seeds[0]].task.type).headline
    table = seed_statistics({seed: headline(score.get(split, {})) for seed, score in scores.items()})
    document = {"split": split, "seeds": seeds, "runs": {seed: str(folder / f"seed-{seed}") for seed in seeds},
                "scores": table}
    (out / "seeds.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (out / "seeds.txt").write_text(format_seed_statistics(split, seeds, table), encoding="utf-8")
    console.print(format_seed_statistics(split, seeds, table), highlight=False)
    if all((folder / f"seed-{seed}" / "predictions" / f"{split}.jsonl").is_file() for seed in seeds):
        models = load_models([folder / f"seed-{seed}" for seed in seeds], split, None, False, 50.0)
        result = compare(models)
        print_summary(console, result)
        write_outputs(result, out)
    console.print(f"wrote {out}", highlight=False)
    return folder


def seed_statistics(reports: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per headline score: each seed's value, their mean and sample standard deviation."""
    metrics = [key for key, value in next(iter(reports.values())).items() if isinstance(value, float)]
    table = {}
    for metric in metrics:
        values = [float(report[metric]) for report in reports.values() if isinstance(report.get(metric), float)]
        table[metric] = {"values": values, "mean": statistics.fmean(values),
                         "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
    return table


def format_seed_statistics(split: str, seeds: list[int], table: dict[str, dict[str, Any]]) -> str:
    lines = [f"{split} scores over seeds {', '.join(map(str, seeds))} (mean +- sample standard deviation)"]
    for metric, row in table.items():
        values = ", ".join(f"{value:.4f}" for value in row["values"])
        lines.append(f"  {metric:<24} {row['mean']:.4f} +- {row['sd']:.4f}   ({values})")
    return "\n".join(lines) + "\n"
