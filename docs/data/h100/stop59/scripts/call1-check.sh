#!/usr/bin/env bash
# Stop 59 (H100, kind nvidia-h100-x1, carry .gpu; main bundle from `bash tools/gpu/pack.sh`,
# models/pmpd-small moved aside for the 64 MiB carry): stop 58 changed the CPU kernels
# that the CUDA tests take as their reference (AVX2 / AVX-512 integer GEMV, f16 attention
# reads, activation quantization), so this call checks the GPU path against them again:
#  1. tools/gpu/run.sh for Vicuna-7B only: the CUDA tests, the CLI check (the same greedy
#     tokens from --backend cuda and cpu on the default model), the Vicuna-7B bench;
#  2. three rounds of Vicuna-7B end to end at 16 and 3 bits, plain LM head (stop 54: 3.86-3.96x).
set -uo pipefail
out=${OUT:-/tmp/out}
t0=$(date +%s)
PMPD_GPU_NO_GRAPH_RUN=1 timeout 300 bash tools/gpu/run.sh "$out/call1" vicuna-7b
source tools/gpu/bundle_env.sh
P=$root/bin/pmpd
for round in 1 2 3; do
  [ $(( $(date +%s) - t0 )) -lt 480 ] || break
  echo "== round $round: vicuna-7b, 16 and 3 bits, plain head"
  timeout 90 "$P" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" 2>&1 |
    grep -E "^\| |rror"
done 2>&1 | tee "$out/call1/rounds.txt"
echo "total $(( $(date +%s) - t0 )) s"
