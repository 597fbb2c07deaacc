#!/usr/bin/env bash
# stop 41 call 4 (H200): the CUDA tests, then the q/k/v GEMV asking L2 for the attention's KV
# rows (default) against not (PMPD_CUDA_KV_PREFETCH=0) in one binary, interleaved: Vicuna-7B
# at 3 and 2 bits, 4 bits (the rolling GEMV, which ignores the hint: a control), Zephyr-3B at
# 3 bits, and Vicuna-7B at 3 bits after a 1024-token prompt.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
t0=$(date +%s)
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
echo "tests: rc $?, $(( $(date +%s) - t0 )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED)|^\[  FAILED" "$out/tests.txt" | head -20
long() { echo "== vicuna-7b 3 prompt 1024 $*"
  env "$@" timeout 90 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 1024 \
    --no-ops --schedule "" 2>&1 | grep -E "^\| 3-bit|rror"; }
{
  for r in 1 2 3; do for v in 0 1; do b vicuna-7b 3 PMPD_CUDA_KV_PREFETCH=$v; done; done
  for r in 1 2; do for v in 0 1; do b vicuna-7b 2 PMPD_CUDA_KV_PREFETCH=$v; done; done
  for v in 0 1; do b vicuna-7b 4 PMPD_CUDA_KV_PREFETCH=$v; done
  for v in 0 1; do b zephyr-3b 3 PMPD_CUDA_KV_PREFETCH=$v; done
  for r in 1 2; do for v in 0 1; do long PMPD_CUDA_KV_PREFETCH=$v; done; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
