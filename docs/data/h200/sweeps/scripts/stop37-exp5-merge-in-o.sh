#!/usr/bin/env bash
# stop 37 call 5: the output projection merging the decode attention's splits as it loads x
# (DecodeAttentionArgs::split_out, GemvPrologue::AttentionSplits): the CUDA tests (two new
# ones), then Vicuna-7B end to end against PMPD_CUDA_ATTN_MERGE_IN_O=0 (the attention's cluster
# merge) in the same binary, interleaved; Zephyr-3B (its output projection runs grouped: not
# merged) as a check of the rest.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 170 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -20
{ for r in 1 2; do b vicuna-7b 3 X=0; b vicuna-7b 3 PMPD_CUDA_ATTN_MERGE_IN_O=0; done
  b vicuna-7b 2 X=0; b vicuna-7b 2 PMPD_CUDA_ATTN_MERGE_IN_O=0; b zephyr-3b 3 X=0; } 2>&1 | tee "$out/e2e.txt"
