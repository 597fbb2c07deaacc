#!/usr/bin/env bash
# stop 40 call 2, on the H100: Vicuna-7B end to end at 3 bits (and 4 and 8) under each of the
# kernels' switches that were tuned on the H200, to see which choices differ on a machine with
# 70% of its bandwidth and the same SMs. Rows stop being issued past 520 s.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
t0=$(date +%s)
row() { [ $(( $(date +%s) - t0 )) -gt 520 ] && return; local s=$(date +%s); b "$@"; echo "   ($(( $(date +%s) - s )) s)"; }
{
  row vicuna-7b 3
  row vicuna-7b 3 PMPD_CUDA_GEMV_STREAM_AHEAD=2
  row vicuna-7b 3 PMPD_CUDA_GEMV_SLICES=0
  row vicuna-7b 3 PMPD_CUDA_GEMV_ONE_BLOCK_COLS=0
  row vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=4
  row vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=16
  row vicuna-7b 3 PMPD_CUDA_ATTN_THREADS=128
  row vicuna-7b 3 PMPD_CUDA_ATTN_THREADS=512
  row vicuna-7b 3 PMPD_CUDA_SAMPLE_CLUSTER=0
  row vicuna-7b 3 PMPD_CUDA_GEMV_STREAM=0
  row vicuna-7b 3
  row vicuna-7b 4 PMPD_CUDA_GEMV_ROLL=0
  row vicuna-7b 4
  row vicuna-7b 8 PMPD_CUDA_GEMV_ROLL=0
  row vicuna-7b 8
  row vicuna-7b 3 PMPD_CUDA_GEMV_STREAM_AHEAD=2
  row vicuna-7b 3
} 2>&1 | tee "$out/e2e.txt"
