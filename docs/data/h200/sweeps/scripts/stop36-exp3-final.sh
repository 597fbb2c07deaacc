#!/usr/bin/env bash
# stop 36 call 3: the final code (stop 35's kernels and the attention's team-sum choice made
# once): the CUDA tests, then Vicuna-7B end to end at 3 and 4 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 120 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -20
{ b vicuna-7b 3; b vicuna-7b 4; } 2>&1 | tee "$out/e2e.txt"
