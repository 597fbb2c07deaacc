#!/usr/bin/env bash
# stop 38 call 2: the attention at the end of the q|k|v GEMV with each head split over several
# blocks (PMPD_CUDA_ATTN_IN_QKV_SPLITS, merged through global memory by the head's last split)
# against the attention kernel of its own (PMPD_CUDA_ATTN_IN_QKV=0): CUDA tests, then Vicuna-7B
# end to end, alternating, at 3 bits (4 and 2 splits), 2 bits and a 384-token prompt.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
bp() { local prompt=$1 shape=$2 bits=$3; shift 3; echo "== $shape $bits prompt $prompt $*"
  env "$@" timeout 120 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens "$prompt" \
    --no-ops --schedule "" 2>&1 | grep -E "^\| $bits-bit|rror"; }
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
grep -E "PASSED|FAILED|rror" "$out/tests.txt" | head -30
{ for r in 1 2; do b vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0; b vicuna-7b 3; b vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV_SPLITS=2; done
  b vicuna-7b 2 PMPD_CUDA_ATTN_IN_QKV=0; b vicuna-7b 2
  bp 384 vicuna-7b 3 PMPD_CUDA_ATTN_IN_QKV=0; bp 384 vicuna-7b 3; } 2>&1 | tee "$out/e2e.txt"
