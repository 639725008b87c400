"""homofit and the Hugging Face reference recipe on the same spec, one after the other, side by side.

    python scripts/compare_accuracy.py SPEC [key=value ...] [--out-dir DIR] [--tolerance POINTS]

The spec's task picks the reference (reference_ner.py, reference_classification.py, reference_qa.py,
reference_generation.py); the overrides go to both runs alike, e.g. train.seed=1. They run one after the
other, never at once (they would share the CPU cores). DIR (default runs/compare-<spec name>) gets homofit/
(the run directory), reference.json and summary.json. The table shows every split each tool scored, on the
task's headline metrics from 0 to 100.

The gate is the same for every task: on the task's headline metric (`headline_metric` of homofit's task,
e.g. entity F1, accuracy, SQuAD F1, BLEU), homofit's test score may fall below the reference's by at most
--tolerance points on the 0-100 scale (default 1.0). Exit codes: 0 within it, 1 further below, 2 when the
spec cannot be compared (a setting the reference does not reproduce, a task without a reference, DIR in use),
and homofit's or the reference's own code when one of them fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS.parent) not in sys.path:  # homofit from this checkout, installed or not
    sys.path.insert(0, str(SCRIPTS.parent))

REFERENCES = {"ner": "reference_ner.py", "classification": "reference_classification.py", "qa": "reference_qa.py",
              "translation": "reference_generation.py"}
SPLITS = ("test-before", "dev", "test")  # homofit's report names, which the references use too
DEFAULT_TOLERANCE = 1.0  # points on the 0-100 scale


@dataclass(frozen=True)
class Verdict:
    """The gate's decision, with scores and gap in points on the 0-100 scale."""

    metric: str
    homofit: float
    reference: float
    gap: float  # homofit - reference
    tolerance: float
    passed: bool


def gate(metric: str, homofit: float, reference: float, tolerance: float = DEFAULT_TOLERANCE,
         perfect_score: float = 100.0) -> Verdict:
    """Pass unless homofit is below the reference by more than `tolerance` points.

    Scores come as the reports hold them, where `perfect_score` is a perfect one (1.0 for fractions, 100.0
    for points); headline metrics are higher-is-better.
    """
    points = 100.0 / perfect_score
    gap = (homofit - reference) * points
    # exactly `tolerance` below passes: the 1e-9 absorbs the rounding of the subtraction (0.81 - 0.82 != -0.01)
    return Verdict(metric, homofit * points, reference * points, gap, tolerance, passed=gap >= -tolerance - 1e-9)


def score_table(metrics: list[str], scores: dict[str, dict[str, dict[str, Any]]], perfect_score: float,
                wall_s: dict[str, int]) -> list[str]:
    """One row per tool and split: the metrics in points, and each tool's wall time on its test row."""
    header = f"{'':<12}{'':<13}" + "".join(f"{metric:>13}" for metric in metrics) + f"{'wall s':>9}"
    rows = [header]
    for split in SPLITS:
        for tool, reports in scores.items():
            report = reports.get(split)
            if report is None:
                continue
            cells = "".join(f"{100 * report[metric] / perfect_score:>13.2f}"
                            if isinstance(report.get(metric), (int, float)) else f"{'':>13}" for metric in metrics)
            wall = str(wall_s[tool]) if split == "test" else ""
            rows.append(f"{split:<12}{tool:<13}{cells}{wall:>9}")
    return rows


def run_timed(name: str, command: list[str]) -> int:
    """Run one tool with this process's output; its wall time in whole seconds (exit with its code on failure)."""
    print("+", " ".join(command), flush=True)
    started = time.perf_counter()
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        print(f"compare_accuracy.py: {name} exited with code {code}", file=sys.stderr)
        sys.exit(code)
    return round(time.perf_counter() - started)


def read_homofit_reports(run: Path) -> dict[str, dict[str, Any]]:
    from homofit.rundir import RunDir

    paths = {split: RunDir(run).report(split, "json") for split in SPLITS}
    return {split: json.loads(path.read_text(encoding="utf-8")) for split, path in paths.items() if path.is_file()}


def compare(spec_path: Path, overrides: list[str], out_dir: Path, tolerance: float) -> Verdict:
    """Check that the reference reproduces the spec, run both tools, write summary.json and print the table."""
    from homofit.config import load_config
    from homofit.errors import HomofitError
    from homofit.tasks import build_task

    spec = load_config(spec_path, overrides)
    if spec.task.type not in REFERENCES:
        raise HomofitError(f"task.type={spec.task.type}: no reference recipe in scripts/ (there are: "
                           f"{', '.join(REFERENCES)}).")
    if spec.data.test is None:
        raise HomofitError("data.test: the gate compares the test scores, and the spec has no test split.")
    task = build_task(spec.task)
    if (out_dir / "homofit").exists() or (out_dir / "reference.json").exists():
        raise HomofitError(f"{out_dir} already holds a comparison; choose a new --out-dir.")
    script = REFERENCES[spec.task.type]
    reference_command = [sys.executable, str(SCRIPTS / script), str(spec_path), *overrides]
    run_timed(script, [*reference_command, "--check"])  # a setting it does not reproduce stops us before homofit runs
    out_dir.mkdir(parents=True, exist_ok=True)
    homofit_command = [sys.executable, "-m", "homofit.cli", "train", str(spec_path), *overrides]
    wall_s = {"homofit": run_timed("homofit train", [*homofit_command, "--run-dir", str(out_dir / "homofit")]),
              "reference": run_timed(script, [*reference_command, "--out", str(out_dir / "reference.json")])}
    reference = json.loads((out_dir / "reference.json").read_text(encoding="utf-8"))
    scores = {"homofit": read_homofit_reports(out_dir / "homofit"),
              "reference": {split: reference[split] for split in SPLITS if split in reference}}
    metric, perfect = task.headline_metric, reference["perfect_score"]
    missing = [tool for tool, reports in scores.items() if metric not in reports.get("test", {})]
    if missing:  # a bug: both score data.test, and the references report the headline metric by homofit's name
        raise KeyError(f"no test {metric} from {' and '.join(missing)} in {out_dir}")
    verdict = gate(metric, scores["homofit"]["test"][metric], scores["reference"]["test"][metric], tolerance, perfect)
    metrics = [name for name in task.headline_metrics
               if any(name in report for reports in scores.values() for report in reports.values())]
    summary = {"spec": str(spec_path), "overrides": overrides, "task": spec.task.type, "wall_s": wall_s,
               "scores": {tool: {split: {name: report[name] for name in metrics if name in report}
                                 for split, report in reports.items()} for tool, reports in scores.items()},
               "perfect_score": perfect, "gate": asdict(verdict)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print()
    print("\n".join(score_table(metrics, scores, perfect, wall_s)))
    print(f"test {metric} gap (homofit - reference): {verdict.gap:+.2f} points; "
          + ("PASS" if verdict.passed else "FAIL") + f" (homofit may be at most {tolerance:g} below)")
    return verdict


def main() -> None:
    from homofit.errors import HomofitError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="A homofit spec of a task with a reference, e.g. configs/wnut17.yaml.")
    parser.add_argument("overrides", nargs="*", help="Dotted overrides for both runs, e.g. train.seed=1.")
    parser.add_argument("--out-dir", type=Path, help="Where the two runs go; default: runs/compare-<spec name>.")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="Points (0-100 scale) homofit's test score may be below the reference's "
                             f"(default {DEFAULT_TOLERANCE}).")
    args = parser.parse_args()
    if args.tolerance < 0:
        parser.error("--tolerance is a number of points, 0 or more")
    try:
        verdict = compare(args.spec, args.overrides, args.out_dir or Path("runs") / f"compare-{args.spec.stem}",
                          args.tolerance)
    except HomofitError as error:
        print(f"compare_accuracy.py: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    sys.exit(0 if verdict.passed else 1)


if __name__ == "__main__":
    main()
