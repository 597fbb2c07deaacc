#!/usr/bin/env bash
# stop 29 call 4: runtime switches re-swept on the kept code (Vicuna-7B, 2 and 3 bits; PMPD 4:32,3 at defaults).
set -uo pipefail
source tools/gpu/bundle_env.sh
b() { echo "== $*"; env "$@" timeout 60 "$root/bin/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:4 --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [234]-bit|rror"; }
b X=default
b PMPD_CUDA_ATTN_SPLITS=2
b PMPD_CUDA_ATTN_SPLITS=8
b PMPD_CUDA_ATTN_THREADS=128
b PMPD_CUDA_ATTN_THREADS=512
b PMPD_CUDA_GEMV_ONE_BLOCK_COLS=0
b PMPD_CUDA_GEMV_ONE_BLOCK_COLS=16384
b X=default
