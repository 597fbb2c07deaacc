#!/usr/bin/env bash
# stop 32 call 1: L2 prefetches ahead of the decode GEMVs. The decode attention asks L2 for the
# output projection's tiles and gate|up's first items (PMPD_CUDA_L2_AHEAD_MB), each GEMV for the
# next GEMV's first items once its own are loaded (PMPD_CUDA_L2_AHEAD_GEMV_MB). Vicuna-7B 3 bits
# end to end over a grid of both budgets, twice interleaved; then the CUDA tests at one setting.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
b() { echo "== $1 $2"
  env PMPD_CUDA_L2_AHEAD_MB=$1 PMPD_CUDA_L2_AHEAD_GEMV_MB=$2 timeout 90 "$N/pmpd" bench --backend cuda --shape vicuna-7b \
    --bits ${BITS:-3:3} --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for rep in 1 2; do
  for s in "0 0" "8 0" "24 0" "0 4" "8 4" "8 12"; do b $s; done
done
PMPD_CUDA_L2_AHEAD_MB=8 PMPD_CUDA_L2_AHEAD_GEMV_MB=4 timeout 150 "$N/pmpd_tests" --gtest_filter='*Cuda*' > "$OUT/tests.txt" 2>&1
echo "tests rc=$?"; grep -E "FAILED|PASSED" "$OUT/tests.txt" | head
