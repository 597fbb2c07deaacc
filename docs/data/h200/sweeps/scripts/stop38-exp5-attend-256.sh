#!/usr/bin/env bash
# stop 38 call 5: the attention at the end of the q|k|v GEMV by 256 of the block's 512 threads
# (the others only meet its barriers; 4 x 512-thread attention blocks lost 11% in stop 37, the
# tails of calls 1-4 attended with all 512), 4 splits a head: every CUDA test, then Vicuna-7B
# at 3 bits against the attention kernel of its own.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 150 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -10
{ b vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0; b vicuna-7b 3; } 2>&1 | tee "$out/e2e.txt"
