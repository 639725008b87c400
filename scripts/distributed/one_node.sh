#!/usr/bin/env bash
# One machine, several GPUs: one process per GPU under torchrun (DistributedDataParallel).
#
#   scripts/distributed/one_node.sh CONFIG [key=value ...] [--run-dir DIR]
#
# NPROC (default: the number of visible GPUs) processes each take train.batch_size examples of every global
# batch; the run computes what one process with NPROC x train.batch_size would. `homofit train CONFIG --nproc N`
# does the same from homofit itself and keeps homofit's exit codes (2 for a user error) where torchrun reports 1.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: $0 CONFIG [key=value ...] [--run-dir DIR]" >&2
    exit 2
fi
NPROC=${NPROC:-$(python3 -c 'import torch; print(max(1, torch.cuda.device_count()))')}
exec torchrun --standalone --nproc_per_node "$NPROC" -m homofit.cli train "$@"
