#!/usr/bin/env bash
# stop 34 call 5: call 4's attention with the team sums kept to blocks of at most 16 teams
# (more: the block reduction, as before; Phi-1.5's one 512-thread block a head has 64). The CUDA
# tests, then end to end against 10794f2's attention (.gpu/head.tar.xz) interleaved: Phi-1.5
# (now the block reduction again) and Vicuna-7B (16 teams: unchanged from call 4), 3 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/sweeps/scripts/stop34-lib.sh
"$main/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED" "$out/tests.txt"
# shellcheck disable=SC2086  # $s is "SHAPE BITS", split on purpose
for s in "phi-1.5 3" "vicuna-7b 3" "phi-1.5 3" "vicuna-7b 3"; do ab $s; done
