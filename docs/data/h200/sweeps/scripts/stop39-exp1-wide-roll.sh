#!/usr/bin/env bash
# stop 39 call 1: the rolling streaming GEMV at 5..8 bits (wide_roll_kernel; PMPD_CUDA_GEMV_ROLL=0:
# the task loop, and the 4-bit rolling kernel off too): the CUDA tests, then Vicuna-7B end to
# end at 8, 6, 5 and 7 bits against the task loop, and the per-operator tables both ways.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 300 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -30
{ for r in 1 2; do for w in 8 6 5; do b vicuna-7b $w; b vicuna-7b $w PMPD_CUDA_GEMV_ROLL=0; done; done
  b vicuna-7b 7; b vicuna-7b 7 PMPD_CUDA_GEMV_ROLL=0; } 2>&1 | tee "$out/e2e.txt"
for v in 1 0; do
  PMPD_CUDA_GEMV_ROLL=$v timeout 200 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 5:8 --no-e2e \
    >"$out/ops-roll$v.md" 2>&1
  echo "== per-operator, PMPD_CUDA_GEMV_ROLL=$v"; grep -E "^\| [0-9]|16 \(" "$out/ops-roll$v.md"
done
