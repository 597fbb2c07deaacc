#!/usr/bin/env bash
# stop 37 call 4: the bound on merging the attention's splits in the output projection's
# start instead of the attention's cluster: PMPD_CUDA_ATTN_SPLIT_OUT=1 (a diagnostic build,
# stop37-split-out-bound.diff) has each split write its row, max and sum and leave, no merge
# at all (the output projection then reads stale input: for timing only). Vicuna-7B end to
# end, 3 and 2 bits, interleaved.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
{ for r in 1 2; do b vicuna-7b 3 X=0; b vicuna-7b 3 PMPD_CUDA_ATTN_SPLIT_OUT=1; done
  b vicuna-7b 2 X=0; b vicuna-7b 2 PMPD_CUDA_ATTN_SPLIT_OUT=1; } 2>&1 | tee "$out/e2e.txt"
