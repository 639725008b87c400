"""How homofit's cost grows with the training set: 10k, 100k and 1M classification examples.

For each size, a TSV of SST-2 train sentences repeated and shuffled is trained for 50 steps with the
SST-2 spec (MiniLM, batch 32, no dev or test), twice: with an empty feature cache (cold: read, tokenize,
store) and again on the same cache (warm: tokenization skipped). Each run is a fresh `homofit train`
process; the script reports the tokenize time (from the run's log), the size of the cache entry, the peak RSS
of the process, and the time from the process's start to its first optimizer step and to its exit.

    OMP_NUM_THREADS=2 python scripts/scale_check.py [--sizes 10000,100000,1000000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SST2 = REPO_ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"


def write_repeated(source: Path, size: int, target: Path, seed: int = 0) -> None:
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    picked = [rows[index % len(rows)] for index in range(size)]
    random.Random(seed).shuffle(picked)
    target.write_text("\n".join([header, *picked]) + "\n", encoding="utf-8")


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def child_peak_rss_mib(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `command`; its wall time and its peak RSS (MiB), measured with wait4 on that child alone."""
    started = time.time()
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"scale_check.py: {' '.join(command)} failed ({process.returncode}):\n"
                         f"{process.stderr.read()[-3000:]}")
    return started, usage.ru_maxrss / 1024


def one_run(size_file: Path, run_dir: Path, cache: Path, steps: int) -> dict[str, float]:
    env = {**os.environ, "HOMOFIT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "homofit.cli", "train", str(REPO_ROOT / "configs" / "sst2.yaml"),
               f"data.train={size_file}", "data.dev=null", "data.test=null", "data.max_train_samples=null",
               f"train.max_steps={steps}", "train.log_every=1", "train.eval_before_training=false",
               "--run-dir", str(run_dir)]
    started, peak = child_peak_rss_mib(command, env)
    ended = time.time()
    log = (run_dir / "train.log").read_text(encoding="utf-8")
    tokenized = re.search(r"tokenized train: .*? in ([\d.]+) s", log)
    first_step = next(json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                      if json.loads(line)["event"] == "train")
    first_time = first_step["time"]
    first_at = datetime.fromisoformat(first_time).timestamp() if isinstance(first_time, str) else float(first_time)
    return {"tokenize_s": float(tokenized.group(1)) if tokenized else float("nan"),
            "skipped": "feature cache" in log, "peak_rss_mib": round(peak),
            "first_step_s": round(first_at - started, 1),
            "wall_s": round(ended - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, help="Write scale_check.json and scale_check.md here.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-check-") as scratch_name:
        scratch = Path(scratch_name)
        for size in (int(text) for text in args.sizes.split(",")):
            data = scratch / f"sst2-{size}.tsv"
            write_repeated(SST2, size, data)
            cache = scratch / f"cache-{size}"
            cold = one_run(data, scratch / f"run-{size}-cold", cache, args.steps)
            entry = folder_bytes(cache)
            warm = one_run(data, scratch / f"run-{size}-warm", cache, args.steps)
            row = {"examples": size, "file_mib": round(data.stat().st_size / 2**20, 1),
                   "cache_mib": round(entry / 2**20, 1), "cold": cold, "warm": warm}
            rows.append(row)
            print(json.dumps(row), flush=True)
            data.unlink()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    title = (f"{args.steps} steps of batch 32, MiniLM, SST-2 sentences repeated and shuffled; load average at the "
             f"end {load}; {os.cpu_count()} CPU cores")
    header = ("| examples | file MiB | cache MiB | tokenize s | first step s, cold / warm | peak RSS MiB, cold / warm "
              "| wall s, cold / warm |")
    lines = [title, "", header, "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        cold, warm = row["cold"], row["warm"]
        lines.append(f"| {row['examples']:,} | {row['file_mib']} | {row['cache_mib']} | {cold['tokenize_s']:.1f} | "
                     f"{cold['first_step_s']} / {warm['first_step_s']} | "
                     f"{cold['peak_rss_mib']} / {warm['peak_rss_mib']} "
                     f"| {cold['wall_s']} / {warm['wall_s']} |")
        assert warm["skipped"] and not cold["skipped"], row
    table = "\n".join(lines) + "\n"
    print()
    print(table, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale_check.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        (args.out / "scale_check.md").write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
