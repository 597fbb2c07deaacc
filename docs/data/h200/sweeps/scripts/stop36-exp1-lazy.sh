#!/usr/bin/env bash
# stop 36 call 1: tables built as the warps go (pair_lut_lazy_kernel). The CUDA tests (with
# stop 35's kernel-path check, never run on a GPU before), then Vicuna-7B 3:4 bits full bench
# with PMPD_CUDA_GEMV_LAZY=2 (default) and 0 (stop 35's kernels), then end to end interleaved:
# 3 bits at 2 / 0 / 1 / 32 (32: every table up front, only the wait moved before them), the
# timeline build of the new code (3 and 4 bits), 4 bits and 2 bits at 2 / 0, Zephyr-3B 3 bits
# (its down projection sliced) at 2 / 0.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -20
for l in 2 0; do
  echo "== full bench PMPD_CUDA_GEMV_LAZY=$l"
  PMPD_CUDA_GEMV_LAZY=$l timeout 120 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:4 --prompt-tokens 128 \
    >"$out/bench-lazy$l.md" 2>&1
  grep -E "^\| [0-9]|16 \(|bit \||PMPD|proj|attention|rror" "$out/bench-lazy$l.md"
done
for _ in 1 2; do for l in 2 0 1 32; do b vicuna-7b 3 PMPD_CUDA_GEMV_LAZY=$l; done; done
SHAPE=vicuna-7b BITS=3:4 timeout 90 bash tools/gpu/timeline.sh "$out/timeline" >/dev/null 2>&1
grep -E "^\| (q|attention|o |gate|down)" "$out/timeline/timeline.md" | tail -10
for _ in 1 2; do for l in 2 0; do b vicuna-7b 4 PMPD_CUDA_GEMV_LAZY=$l; done; done
for l in 2 0; do b vicuna-7b 2 PMPD_CUDA_GEMV_LAZY=$l; done
for l in 2 0; do b zephyr-3b 3 PMPD_CUDA_GEMV_LAZY=$l; done
