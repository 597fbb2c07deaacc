#!/usr/bin/env bash
# stop 37 call 3: Vicuna-7B's decode attention as fewer, wider blocks a head (no code change:
# PMPD_CUDA_ATTN_SPLITS / PMPD_CUDA_ATTN_THREADS) against the default (4 splits of 256 below
# 1792 positions): fewer attention blocks leave SMs free, so the attention's blocks start on
# the first SMs q|k|v frees and the output projection's on the others while the attention
# runs. 3 bits, 128- and 1024-token prompts, interleaved.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
bp() { local shape=$1 bits=$2 prompt=$3; shift 3; echo "== $shape $bits prompt $prompt $*"
  env "$@" timeout 120 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens "$prompt" \
    --no-ops --schedule "" 2>&1 | grep -E "^\| $bits-bit|rror"; }
{
  for v in "X=0" "PMPD_CUDA_ATTN_SPLITS=1 PMPD_CUDA_ATTN_THREADS=512" "PMPD_CUDA_ATTN_SPLITS=1 PMPD_CUDA_ATTN_THREADS=256" \
           "PMPD_CUDA_ATTN_SPLITS=2 PMPD_CUDA_ATTN_THREADS=512" "PMPD_CUDA_ATTN_SPLITS=2 PMPD_CUDA_ATTN_THREADS=256" \
           "X=0" "PMPD_CUDA_ATTN_SPLITS=1 PMPD_CUDA_ATTN_THREADS=512" "PMPD_CUDA_ATTN_SPLITS=2 PMPD_CUDA_ATTN_THREADS=512"; do
    bp vicuna-7b 3 128 $v
  done
  for v in "X=0" "PMPD_CUDA_ATTN_SPLITS=1 PMPD_CUDA_ATTN_THREADS=512" "PMPD_CUDA_ATTN_SPLITS=2 PMPD_CUDA_ATTN_THREADS=512"; do
    bp vicuna-7b 3 1024 $v
  done
} 2>&1 | tee "$out/e2e.txt"
