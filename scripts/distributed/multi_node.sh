#!/usr/bin/env bash
# Several machines: run this same command on every node; torchrun's c10d rendezvous joins them.
#
#   NNODES=2 NPROC=8 MASTER_ADDR=node-0 scripts/distributed/multi_node.sh CONFIG [key=value ...] [--run-dir DIR]
#
# MASTER_ADDR is a host every node can reach (the first node); MASTER_PORT (default 29500) must be open between
# them; RUN_ID names the job so that nodes of two jobs never join each other. The run directory is written by
# the first process of the job: give --run-dir (or output.dir) on a file system the nodes share, so that
# `--resume` finds checkpoints/last from any node.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: NNODES=N NPROC=P MASTER_ADDR=HOST $0 CONFIG [key=value ...]" >&2
    exit 2
fi
: "${NNODES:?set NNODES, the number of machines}"
: "${MASTER_ADDR:?set MASTER_ADDR, a host all nodes reach (the first node)}"
NPROC=${NPROC:-$(python3 -c 'import torch; print(max(1, torch.cuda.device_count()))')}
MASTER_PORT=${MASTER_PORT:-29500}
RUN_ID=${RUN_ID:-homofit}
exec torchrun --nnodes "$NNODES" --nproc_per_node "$NPROC" --rdzv_backend c10d \
    --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv_id "$RUN_ID" -m homofit.cli train "$@"
