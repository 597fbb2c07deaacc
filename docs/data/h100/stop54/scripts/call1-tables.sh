#!/usr/bin/env bash
# Prepared at stop 52 (no device lent then), run at stop 54 (H100, kind nvidia-h100-x1, carry .gpu): the tables on the
# issue's machine with today's code (last measured there at stop 40, before stops 41-50's
# kept changes). Main bundle from `bash tools/gpu/pack.sh`; carry .gpu; models/pmpd-small
# moved aside (carry limit).
#  1. tools/gpu/run.sh: the CUDA tests, the CLI check, the full
#     `pmpd bench --backend cuda --shape S --prompt-tokens 128` of the four shapes ($OUT/call1);
#  2. Vicuna-7B end to end with the LM head quantized (`--quantize-head`, stop 47) at 3 and 4
#     bits, the 16-bit baseline in the same run: stop 40's 3.78x plus the head's share predicts
#     ~3.9-4.0x at 3 bits (docs/cuda.md, "What the targets need on the H100");
#  3. `--gemv-ceiling` again (the decode's own ceiling on this card).
set -uo pipefail
out=${OUT:-/tmp/out}
t0=$(date +%s)
PMPD_GPU_NO_GRAPH_RUN=1 timeout 380 bash tools/gpu/run.sh "$out/call1"
source tools/gpu/bundle_env.sh
P=$root/bin/pmpd
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv | tee "$out/call1/gpu.txt"
{
  echo "== vicuna-7b, LM head quantized, 3:4 bits"
  timeout 120 "$P" bench --backend cuda --shape vicuna-7b --bits 3:4 --prompt-tokens 128 --no-ops --quantize-head \
    --schedule auto 2>&1 | grep -E "^\| |rror"
} 2>&1 | tee "$out/call1/quantized-head.txt"
if [ $(( $(date +%s) - t0 )) -lt 520 ]; then
  timeout 60 "$P" bench --backend cuda --gemv-ceiling 2>&1 | tee "$out/call1/ceiling.txt" | tail -30
fi
echo "total $(( $(date +%s) - t0 )) s"
