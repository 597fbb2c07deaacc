#!/usr/bin/env bash
# stop 32 call 2: the L2 prefetches ahead of the decode GEMVs (call 1: bulk prefetches, much
# slower) as one prefetch.global.L2 a 128-byte line (PMPD_CUDA_L2_AHEAD_LINES=1). Vicuna-7B 3
# bits end to end, twice interleaved.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
b() { echo "== $*"
  env "$@" timeout 90 "$N/pmpd" bench --backend cuda --shape vicuna-7b \
    --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| 3-bit|rror"; }
L=PMPD_CUDA_L2_AHEAD_LINES=1
for rep in 1 2; do
  b PMPD_CUDA_L2_AHEAD_MB=0
  b $L PMPD_CUDA_L2_AHEAD_MB=7
  b $L PMPD_CUDA_L2_AHEAD_MB=16
  b $L PMPD_CUDA_L2_AHEAD_GEMV_MB=4
  b $L PMPD_CUDA_L2_AHEAD_MB=7 PMPD_CUDA_L2_AHEAD_GEMV_MB=2
  b PMPD_CUDA_L2_AHEAD_MB=2
done
