#!/usr/bin/env bash
# stop 33 call 1: the down projections on the streaming GEMV over column slices (the sliced
# kernel, PMPD_CUDA_GEMV_SLICES=1, the default) against the task loop (=0), same binary.
# The CUDA tests first; then end to end, interleaved, and Vicuna-7B's per-operator table.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
out=${OUT:-/tmp/out}
"$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|Cuda.ColumnSlices" "$out/tests.txt"
b() { local shape=$1 bits=$2; shift 2; echo "== $shape $bits $*"
  env "$@" timeout 90 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens 128 \
    --no-ops --schedule "" 2>&1 | grep -E "^\| $bits-bit|rror"; }
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
