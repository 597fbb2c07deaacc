#!/usr/bin/env bash
# stop 33 call 1: the down projections on the streaming GEMV over column slices (the sliced
# kernel) against the task loop (PMPD_CUDA_GEMV_SLICES=0), same binary. In this call's code the
# setting was a switch, =1 slices wherever the tables fit (the kept code's =2).
# The CUDA tests first; then end to end, interleaved, and Vicuna-7B's per-operator table.
set -uo pipefail
source docs/data/h200/sweeps/scripts/stop33-lib.sh
"$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|Cuda.ColumnSlices" "$out/tests.txt"
for rep in 1 2; do
  for bits in 3 2; do
    b vicuna-7b $bits PMPD_CUDA_GEMV_SLICES=0
    b vicuna-7b $bits PMPD_CUDA_GEMV_SLICES=1
  done
done
for s in phi-1.5 mobilellama-1.4b zephyr-3b; do
  b $s 3 PMPD_CUDA_GEMV_SLICES=0
  b $s 3 PMPD_CUDA_GEMV_SLICES=1
done
for v in 0 1; do
  echo "== per-operator vicuna-7b PMPD_CUDA_GEMV_SLICES=$v"
  PMPD_CUDA_GEMV_SLICES=$v timeout 120 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:3 --prompt-tokens 128 \
    --no-e2e 2>&1 | grep -E "^\| |rror" | head -20
done
