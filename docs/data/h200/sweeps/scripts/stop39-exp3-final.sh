#!/usr/bin/env bash
# stop 39 call 3: the committed code (wide rolling GEMV at 5, 6 and 8 bits; 7 on the task loop):
# the CUDA tests, Vicuna-7B's per-operator table at every width, end to end at 8 and 7 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 300 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -30
timeout 300 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:8 --no-e2e >"$out/ops.md" 2>&1
grep -E "^\| [0-9]|16 \(|copy" "$out/ops.md"
{ b vicuna-7b 8; b vicuna-7b 7; } 2>&1 | tee "$out/e2e.txt"
