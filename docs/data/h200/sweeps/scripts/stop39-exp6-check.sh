#!/usr/bin/env bash
# stop 39 call 6: the last commit (the rolling kernels sharing their slot protocol, PTX
# isomorphic to the measured build): the CUDA tests, then 8, 6 and 4 bits end to end.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 300 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -30
{ b vicuna-7b 8; b vicuna-7b 6; b vicuna-7b 4; } 2>&1 | tee "$out/e2e.txt"
