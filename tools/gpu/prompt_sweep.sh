#!/usr/bin/env bash
# On the GPU machine: prompt-pass speed of the two quantized prompt paths, side by side in
# one run: the tiled multi-token GEMM (pair_lut_gemm.cu) and dequantize + cuBLAS, at several
# prompt lengths (`pmpd bench --backend cuda`, PMPD_CUDA_TILED_GEMM_MAX picking the path).
#   bash tools/gpu/prompt_sweep.sh OUTDIR SHAPE BITS TOKENS...
#   e.g. bash tools/gpu/prompt_sweep.sh "$OUT" vicuna-7b 3:4 8 32 128
# Writes OUTDIR/prompt-sweep.md: per prompt length, the bench's end-to-end table under each
# path (its last column is the prompt tokens/s; the 16-bit row is cuBLAS either way).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: prompt_sweep.sh OUTDIR SHAPE BITS TOKENS...}
shape=${2:?shape}
bits=${3:?bits}
shift 3
mkdir -p "$out"
source tools/gpu/bundle_env.sh
for tokens in "$@"; do
  for path in tiled dequant; do
    limit=$([ "$path" = tiled ] && echo 1000000 || echo 0)
    echo "## $tokens-token prompt, $path path (PMPD_CUDA_TILED_GEMM_MAX=$limit)" | tee -a "$out/prompt-sweep.md"
    PMPD_CUDA_TILED_GEMM_MAX=$limit "$root/bin/pmpd" bench --backend cuda --shape "$shape" --bits "$bits" \
      --prompt-tokens "$tokens" --new-tokens 8 --no-ops --json "$out/prompt-$tokens-$path.json" 2>&1 |
      grep -E "^\|" | tee -a "$out/prompt-sweep.md"
  done
done
