#!/usr/bin/env bash
# stop 40 call 5, on the H100: the rest of the H200-tuned switches at 3 bits (Vicuna-7B end to
# end): the attention's merge through global memory instead of a cluster (the attention's wait
# returned 1.3 us after q|k|v's end in call 3's timeline, the GEMVs' 0.5), with 4 splits too;
# the fragments and folded norms off; chained launches off.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
{
  b vicuna-7b 3
  b vicuna-7b 3 PMPD_CUDA_ATTN_CLUSTER=0
  b vicuna-7b 3 PMPD_CUDA_ATTN_CLUSTER=0 PMPD_CUDA_ATTN_SPLITS=4
  b vicuna-7b 3 PMPD_CUDA_ATTN_CLUSTER=0 PMPD_CUDA_ATTN_SPLITS=2
  b vicuna-7b 3 PMPD_CUDA_ATTN_FRAGMENTS=0
  b vicuna-7b 3 PMPD_CUDA_MLP_FRAGMENTS=0
  b vicuna-7b 3 PMPD_CUDA_NORM_FOLD=0
  b vicuna-7b 3 PMPD_CUDA_PDL=0
  b vicuna-7b 3 PMPD_CUDA_ATTN_CLUSTER=0
  b vicuna-7b 3
} 2>&1 | tee "$out/e2e.txt"
