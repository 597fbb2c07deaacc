#!/usr/bin/env bash
# stop 41 call 7 (H200): the CUDA tests, then the decode attention's lean reductions (default)
# against the plain ones (PMPD_CUDA_ATTN_LEAN=0) in one binary, interleaved: Vicuna-7B at 3
# bits twice and 2 bits once, Zephyr-3B at 3 bits if time is left.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
t0=$(date +%s)
timeout 100 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
echo "tests: rc $?, $(( $(date +%s) - t0 )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED)|^\[  FAILED" "$out/tests.txt" | head -20
{
  for r in 1 2; do for v in 0 1; do b vicuna-7b 3 PMPD_CUDA_ATTN_LEAN=$v; done; done
  for v in 0 1; do b vicuna-7b 2 PMPD_CUDA_ATTN_LEAN=$v; done
  if [ $(( $(date +%s) - t0 )) -lt 150 ]; then for v in 0 1; do b zephyr-3b 3 PMPD_CUDA_ATTN_LEAN=$v; done; fi
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
