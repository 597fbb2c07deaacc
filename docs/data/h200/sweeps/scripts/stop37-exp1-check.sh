#!/usr/bin/env bash
# stop 37 call 1: the first GPU run of f7c3b80 (the sliced streaming GEMV's idle warps skip
# the walk): the CUDA tests, then Vicuna-7B and Zephyr-3B end to end at 3 bits (the down
# projections run sliced there), twice each, and Vicuna-7B's full bench at 2..4 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 150 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -20
{ for r in 1 2; do b vicuna-7b 3; b zephyr-3b 3; done; b vicuna-7b 2; } 2>&1 | tee "$out/e2e.txt"
timeout 200 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:4 --prompt-tokens 128 >"$out/bench.md" 2>&1
grep -E "^\| [0-9]|bit \||PMPD|proj|attention|rror" "$out/bench.md" | head -40
