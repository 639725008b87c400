#!/usr/bin/env bash
# SST-2 with MiniLM: three ways of fine-tuning (full, LoRA r=8, head only) x three seeds (42, 1, 2), each at its
# method's default learning rate, then `homofit compare` across seeds (per method) and across methods (per seed).
#
#   scripts/sst2_homogenization_study.sh [OUT_DIR] [key=value ...]
#
# OUT_DIR (default runs/sst2-study) gets full/, lora/, head/ (each with seed-42, seed-1, seed-2 and summary/) and
# compare-*/ folders. The default subset (2,000 training rows, 2 epochs) is sized for a CPU: 9 runs of 2 to 4 min.
set -euo pipefail
cd "$(dirname "$0")/.."

HOMOFIT=${HOMOFIT:-homofit}
# shellcheck source=scripts/lib/sst2_study.sh
source scripts/lib/sst2_study.sh
sst2_setup runs/sst2-study "$@"

for method in "${METHODS[@]}"; do
    "$HOMOFIT" train configs/sst2.yaml "${COMMON[@]}" "${METHOD_OVERRIDE[$method]}" --seeds 42,1,2 \
        --run-dir "$OUT_DIR/$method"
done
for method in "${METHODS[@]}"; do
    "$HOMOFIT" compare "$OUT_DIR/$method"/seed-{42,1,2} --out "$OUT_DIR/compare-seeds-$method"
done
for seed in 42 1 2; do
    "$HOMOFIT" compare "$OUT_DIR"/{full,lora,head}/seed-$seed --out "$OUT_DIR/compare-methods-seed$seed"
done
"$HOMOFIT" compare "$OUT_DIR/full/seed-42" --before --out "$OUT_DIR/compare-before-full"
