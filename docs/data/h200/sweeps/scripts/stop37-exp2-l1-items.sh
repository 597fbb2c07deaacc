#!/usr/bin/env bash
# stop 37 call 2: the streaming GEMVs' next items asked of L1 at the block's start
# (PMPD_CUDA_L1_ITEMS=K) and the streaming kernels' shared-memory carveout left to the driver
# or set to the least that fits (PMPD_CUDA_STREAM_CARVEOUT=0); Vicuna-7B 3 bits end to end,
# interleaved; the CUDA GEMV tests with K=2 first.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
PMPD_CUDA_L1_ITEMS=2 timeout 150 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -20
{
  for v in "PMPD_CUDA_L1_ITEMS=0" "PMPD_CUDA_L1_ITEMS=1" "PMPD_CUDA_L1_ITEMS=2" "PMPD_CUDA_L1_ITEMS=3" \
           "PMPD_CUDA_STREAM_CARVEOUT=0" "PMPD_CUDA_STREAM_CARVEOUT=0 PMPD_CUDA_L1_ITEMS=2"; do
    b vicuna-7b 3 $v
  done
  for v in "PMPD_CUDA_L1_ITEMS=0" "PMPD_CUDA_L1_ITEMS=2" "PMPD_CUDA_STREAM_CARVEOUT=0 PMPD_CUDA_L1_ITEMS=2"; do
    b vicuna-7b 3 $v
  done
} 2>&1 | tee "$out/e2e.txt"
