#!/usr/bin/env bash
# SQuAD v1.1 accuracy benchmark: homofit and the Hugging Face run_qa-style Trainer recipe on the same split,
# spec, model and seed, one after the other (never at once: they would share the CPU cores).
#
#   scripts/compare_qa_accuracy.sh [OUT_DIR] [key=value ...]
#
# Overrides go to both runs alike, e.g. a CPU-sized run: data.max_train_samples=2500 data.max_length=256 data.stride=64 train.epochs=1
# Writes OUT_DIR/homofit/ (a run directory), OUT_DIR/reference.json and OUT_DIR/summary.json, and exits 1 when
# homofit's F1 is more than 1 point below the reference's.
# PYTHON and HOMOFIT name the interpreter and the CLI to use (default: python and homofit on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
HOMOFIT=${HOMOFIT:-homofit}
SPEC=configs/squad_v1.1.yaml
out=${1:-runs/compare-qa-$(date +%Y%m%d-%H%M%S)}
shift $(( $# > 0 ? 1 : 0 ))

[ -f runs/squad_split/train.json ] || "$PYTHON" scripts/split_squad.py
mkdir -p "$out"
start=$(date +%s)
"$HOMOFIT" train "$SPEC" "$@" --run-dir "$out/homofit"
middle=$(date +%s)
"$PYTHON" scripts/reference_qa.py "$SPEC" "$@" --out "$out/reference.json"
end=$(date +%s)

"$PYTHON" - "$out" $((middle - start)) $((end - middle)) <<'PY'
import json, sys
from pathlib import Path

out, homofit_s, reference_s = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
homofit = json.loads((out / "homofit" / "reports" / "test.json").read_text())
reference = json.loads((out / "reference.json").read_text())
summary = {
    "homofit": {"exact_match": homofit["exact_match"], "f1": homofit["f1"], "wall_s": homofit_s},
    "reference": {"exact_match": reference["exact_match"], "f1": reference["f1"], "wall_s": reference_s},
    "f1_gap": homofit["f1"] - reference["f1"],
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(f"{'':>10}  {'EM':>6}  {'F1':>6}  {'wall s':>7}")
for name in ("homofit", "reference"):
    row = summary[name]
    print(f"{name:>10}  {row['exact_match']:6.2f}  {row['f1']:6.2f}  {row['wall_s']:7d}")
print(f"F1 gap (homofit - reference): {summary['f1_gap']:+.2f}")
sys.exit(0 if summary["f1_gap"] >= -1.0 else 1)
PY
