#!/usr/bin/env bash
# stop 41 call 1 (H200): the CUDA tests, then the streaming GEMV's first item by bulk copies
# (PMPD_CUDA_GEMV_BULK_FIRST=1) against each warp's loads (=0) in one binary: Vicuna-7B end to
# end at 3 and 2 bits interleaved, Zephyr-3B at 3 bits, then the per-operator rows at 3 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
t0=$(date +%s)
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
echo "tests: rc $?, $(( $(date +%s) - t0 )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED)|^\[  FAILED" "$out/tests.txt" | head -20
{
  for r in 1 2 3; do for v in 0 1; do b vicuna-7b 3 PMPD_CUDA_GEMV_BULK_FIRST=$v; done; done
  for r in 1 2; do for v in 0 1; do b vicuna-7b 2 PMPD_CUDA_GEMV_BULK_FIRST=$v; done; done
  for v in 0 1; do b zephyr-3b 3 PMPD_CUDA_GEMV_BULK_FIRST=$v; done
  for v in 0 1; do
    echo "-- bulk $v per operator"
    PMPD_CUDA_GEMV_BULK_FIRST=$v timeout 120 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --no-e2e 2>&1 | grep -E "^\| (3|16 \()"
  done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
