#!/usr/bin/env bash
# stop 38 call 1: the decode attention at the end of the q|k|v GEMV (one block a head, heads
# counted in by the GEMV's blocks; PMPD_CUDA_ATTN_IN_QKV=0: the attention kernel of its own):
# the CUDA tests, then Vicuna-7B end to end at 3 and 2 bits, the two alternating, and at
# longer prompts (384: every step attends 385..512 positions; 1024: forced on against off).
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
bp() { local prompt=$1 shape=$2 bits=$3; shift 3; echo "== $shape $bits prompt $prompt $*"
  env "$@" timeout 120 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens "$prompt" \
    --no-ops --schedule "" 2>&1 | grep -E "^\| $bits-bit|rror"; }
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -30
{ for r in 1 2; do b vicuna-7b 3; b vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0; done
  b vicuna-7b 2; b vicuna-7b 2 PMPD_CUDA_ATTN_IN_QKV=0
  bp 384 vicuna-7b 3; bp 384 vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0
  bp 1024 vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=100000; bp 1024 vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0; } 2>&1 | tee "$out/e2e.txt"
