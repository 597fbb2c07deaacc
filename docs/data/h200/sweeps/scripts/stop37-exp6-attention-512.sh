#!/usr/bin/env bash
# stop 37 call 6: Vicuna-7B's decode attention as 4 splits of 512 threads (teams of 16 threads
# a position: 32 teams a block) against the default 4 of 256; 3 bits, 128-token prompt, interleaved.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
{ for r in 1 2; do b vicuna-7b 3 X=0; b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=4 PMPD_CUDA_ATTN_THREADS=512; done; } 2>&1 | tee "$out/e2e.txt"
