#!/usr/bin/env bash
# stop 34 call 3: the decode attention's launch shape at short contexts, re-measured on the
# code of today (stop 25 chose 4 splits of 256 threads a head before the push merge of stop 28
# and the streaming output projection, whose blocks start early on SMs the attention leaves
# free). Same binary, PMPD_CUDA_ATTN_SPLITS / PMPD_CUDA_ATTN_THREADS; Vicuna-7B, 3 bits end to
# end, two interleaved repetitions.
set -uo pipefail
source docs/data/h200/sweeps/scripts/stop33-lib.sh
for _ in 1 2; do
  b vicuna-7b 3
  b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=2 PMPD_CUDA_ATTN_THREADS=512
  b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=2 PMPD_CUDA_ATTN_THREADS=256
  b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=3 PMPD_CUDA_ATTN_THREADS=256
  b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=4 PMPD_CUDA_ATTN_THREADS=128
  b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=8 PMPD_CUDA_ATTN_THREADS=128
  b vicuna-7b 3 PMPD_CUDA_ATTN_SPLITS=1 PMPD_CUDA_ATTN_THREADS=512
done
