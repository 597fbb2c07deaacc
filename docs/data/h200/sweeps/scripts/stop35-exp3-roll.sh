#!/usr/bin/env bash
# stop 35 call 3: the rolling streaming GEMV at 4 bits (pair_lut_roll_kernel: three tasks'
# tables a block, slots rebuilt behind per-slot barriers instead of a block barrier a task).
# The CUDA tests, then Vicuna-7B at 4 bits with it (default) and on the task loop
# (PMPD_CUDA_GEMV_ROLL=0): the full bench (per-operator table, PMPD schedule) once each, then
# end to end interleaved twice more.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 200 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -20
for r in 1 0; do
  echo "== full bench PMPD_CUDA_GEMV_ROLL=$r"
  PMPD_CUDA_GEMV_ROLL=$r timeout 120 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:4 --prompt-tokens 128 \
    >"$out/bench-roll$r.md" 2>&1
  grep -E "^\| [0-9]|16 \(|bit \||PMPD|proj|attention|rror" "$out/bench-roll$r.md"
done
for _ in 1 2; do for r in 1 0; do b vicuna-7b 4 PMPD_CUDA_GEMV_ROLL=$r; done; done
