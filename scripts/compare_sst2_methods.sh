#!/usr/bin/env bash
# Full fine-tuning, LoRA and head-only training on SST-2, each at its method's default learning rate,
# one after the other, with the majority-class baseline beside them.
#
#   scripts/compare_sst2_methods.sh [OUT_DIR] [key=value ...]
#
# OUT_DIR (default runs/sst2-methods) gets full/, lora/ and head/ (run directories) and times.txt.
# Overrides go to all three runs; the default subset (2,000 training rows, 2 epochs) is sized for a CPU.
# HOMOFIT and PYTHON name the homofit command and the interpreter (default: homofit, python3).
set -euo pipefail
cd "$(dirname "$0")/.."

HOMOFIT=${HOMOFIT:-homofit}
PYTHON=${PYTHON:-python3}
# shellcheck source=scripts/lib/sst2_study.sh
source scripts/lib/sst2_study.sh
sst2_setup runs/sst2-methods "$@"

for method in "${METHODS[@]}"; do
    start=$(date +%s)
    "$HOMOFIT" train configs/sst2.yaml "${COMMON[@]}" "${METHOD_OVERRIDE[$method]}" --run-dir "$OUT_DIR/$method"
    echo "$method $(($(date +%s) - start))" >> "$OUT_DIR/times.txt"
done

"$PYTHON" - "$OUT_DIR" <<'PY'
import collections
import csv
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
times = dict(line.split() for line in (out / "times.txt").read_text().splitlines())


def majority(path: str) -> float:
    with open(path, newline="", encoding="utf-8") as handle:
        labels = [row[0] for row in list(csv.reader(handle, delimiter="\t"))[1:]]
    return 100 * collections.Counter(labels).most_common(1)[0][1] / len(labels)


print("| | trainable parameters | optim.lr | dev accuracy | test accuracy | wall s |")
print("|---|---:|---:|---:|---:|---:|")
for name in ("full", "lora", "head"):
    run = out / name
    log = (run / "train.log").read_text()
    trainable = re.search(r"parameters, ([\d,]+) trainable", log)
    lr = re.search(r"optim\.lr ([\d.e+-]+)", log)
    dev = json.loads((run / "reports" / "dev.json").read_text())["accuracy"]
    test = json.loads((run / "reports" / "test.json").read_text())["accuracy"]
    print(f"| {name} | {trainable.group(1) if trainable else '?'} | {lr.group(1) if lr else '?'} | "
          f"{100 * dev:.2f} | {100 * test:.2f} | {times[name]} |")
print(f"| majority class | | | {majority('../shared/data/sst2/dev.tsv'):.2f} | "
      f"{majority('../shared/data/sst2/test.tsv'):.2f} | |")
PY
