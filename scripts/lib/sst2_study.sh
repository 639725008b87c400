# shellcheck shell=bash
# What compare_sst2_methods.sh and sst2_homogenization_study.sh share, sourced by both from the repository root:
# a fresh output folder, the CPU-sized SST-2 subset they train on, and the three ways of fine-tuning they compare.

# sst2_setup DEFAULT_OUT_DIR [OUT_DIR] [key=value ...]: sets OUT_DIR (made here; one that exists stops the script
# with exit code 2, so two studies' runs never mix) and COMMON, the overrides of every run: the subset (2,000
# training rows, 2 epochs; optim.lr=null: each method's default rate, full 5e-5, LoRA 5e-4, head-only 1e-3),
# then the caller's overrides.
# shellcheck disable=SC2034  # OUT_DIR and COMMON are read by the scripts that source this file
sst2_setup() {
    local default=$1
    shift
    OUT_DIR=${1:-$default}
    shift || true
    if [[ -e "$OUT_DIR" ]]; then
        echo "error: $OUT_DIR exists; choose a new OUT_DIR" >&2
        exit 2
    fi
    mkdir -p "$OUT_DIR"
    COMMON=(data.max_train_samples=2000 train.epochs=2 optim.lr=null "$@")
}

# The methods, in the order they run, and what each adds to the spec (full fine-tuning: freeze nothing, the default).
# shellcheck disable=SC2034  # read by the scripts that source this file
METHODS=(full lora head)
# shellcheck disable=SC2034
declare -A METHOD_OVERRIDE=([full]="model.freeze=none" [lora]="model.lora={r: 8}" [head]="model.freeze=all_but_head")
