#!/usr/bin/env bash
# stop 38 call 4: call 3 again with the attention inlined at the end of the q|k|v GEMV (as in calls
# 1 and 2, its argument __grid_constant__), and a diagnostic (PMPD_CUDA_ATTN_IN_QKV_DIAG=1: the
# fused kernel's blocks count their heads in but attend nothing, the attention kernel of its
# own runs after it) that prices the fused kernel's GEMV apart from its attention; against
# the attention kernel of its own (PMPD_CUDA_ATTN_IN_QKV=0). Vicuna-7B, 3 bits, alternating.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 120 "$N/pmpd_tests" --gtest_filter='*AttentionAtTheEndOfQkv*:*AttendAtTheEndOfQkv*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -10
{ for r in 1 2; do b vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0; b vicuna-7b 3; b vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV_DIAG=1; done; } 2>&1 | tee "$out/e2e.txt"
