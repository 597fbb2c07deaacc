#!/usr/bin/env bash
# stop 33 call 2: the column slices' meeting as one acq_rel atomic (the default) against call
# 1's fences (PMPD_CUDA_GEMV_SLICE_FENCE=1); PMPD_CUDA_GEMV_SLICES: 0 the task loop, 1 the rule
# (3 bits, three tasks a block or more), 2 every matrix of more than 16 chunk pairs.
set -uo pipefail
source docs/data/h200/sweeps/scripts/stop33-lib.sh
"$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|Cuda.ColumnSlices" "$out/tests.txt"
F=PMPD_CUDA_GEMV_SLICE_FENCE=1
for rep in 1 2; do
  b vicuna-7b 3 PMPD_CUDA_GEMV_SLICES=0
  b vicuna-7b 3 PMPD_CUDA_GEMV_SLICES=1
  b vicuna-7b 3 PMPD_CUDA_GEMV_SLICES=1 $F
done
b vicuna-7b 2 PMPD_CUDA_GEMV_SLICES=0
b vicuna-7b 2 PMPD_CUDA_GEMV_SLICES=2
for s in zephyr-3b phi-1.5 mobilellama-1.4b; do
  b $s 3 PMPD_CUDA_GEMV_SLICES=0
  b $s 3 PMPD_CUDA_GEMV_SLICES=2
  b $s 3 PMPD_CUDA_GEMV_SLICES=2 $F
done
