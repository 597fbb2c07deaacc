#!/usr/bin/env bash
# stop 51 call 2 (H200): the decode's run-time switches re-checked on the final kernels (each
# default was chosen stops ago, on kernels changed since): decode tokens/s of `pmpd bench
# --backend cuda --shape S --bits 3:3 --prompt-tokens 128 --no-ops --schedule ""` (its 16-bit
# row beside) with one switch set, configurations interleaved, two rounds on Vicuna-7B, one on
# Zephyr-3B. Main bundle = call 1's (stop 50's final code).
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source tools/gpu/bundle_env.sh
P=$root/bin/pmpd
t0=$(date +%s)
run() { local shape=$1 label=$2; shift 2; echo "== $shape, $label"
  env "$@" timeout 60 "$P" bench --backend cuda --shape "$shape" --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" 2>&1 |
    grep -E "^\| (16|3)-bit|rror"; }
cfgs=("default" "ahead2 PMPD_CUDA_GEMV_STREAM_AHEAD=2" "slices2 PMPD_CUDA_GEMV_SLICES=2" "slices0 PMPD_CUDA_GEMV_SLICES=0"
      "splits2 PMPD_CUDA_ATTN_SPLITS=2" "splits8 PMPD_CUDA_ATTN_SPLITS=8" "threads128 PMPD_CUDA_ATTN_THREADS=128"
      "noattnfrag PMPD_CUDA_ATTN_FRAGMENTS=0" "splits1t512 PMPD_CUDA_ATTN_SPLITS=1 PMPD_CUDA_ATTN_THREADS=512")
{
  for round in 1 2; do
    for c in "${cfgs[@]}"; do
      [ $(( $(date +%s) - t0 )) -gt 420 ] && { echo "skipped vicuna $c (time)"; continue; }
      run vicuna-7b $c
    done
  done
  for c in "${cfgs[@]:0:4}"; do
    [ $(( $(date +%s) - t0 )) -gt 540 ] && { echo "skipped zephyr $c (time)"; continue; }
    run zephyr-3b $c
  done
} 2>&1 | tee "$out/sweep.txt"
echo "total $(( $(date +%s) - t0 )) s"
