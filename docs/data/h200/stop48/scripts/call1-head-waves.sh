#!/usr/bin/env bash
# stop 48 call 1 (H200): the streaming GEMV in waves of blocks where one block an SM cannot
# hold its tasks' tables (the quantized LM head at 3 bits; PMPD_CUDA_GEMV_STREAM_WAVES=0 is
# the task loop there, as before). Main bundle: the CUDA tests (BitPlaneGemvMatchesCpuAtEveryWidth
# has a waves mode), then an interleaved A/B at 3 bits with the head quantized, waves off / on,
# on the four shapes (end to end and the step profile's head row), then the full bench of
# Vicuna-7B and Phi-1.5 with the head quantized.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin
t0=$(date +%s)
t waves
bq() { local shape=$1 bits=$2; shift 2; echo "== $shape $bits $*"
  env "$@" timeout 90 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens 128 \
    --quantize-head --no-ops --schedule "" 2>&1 | grep -E "^\| ($bits-bit|final norm)|rror"; }
{
  for r in 1 2; do for shape in vicuna-7b phi-1.5 zephyr-3b mobilellama-1.4b; do for w in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 330 ] && { echo "skipped $shape $w (time)"; continue; }
    bq "$shape" 3 PMPD_CUDA_GEMV_STREAM_WAVES=$w
  done; done; done
} 2>&1 | tee "$out/ab.txt"
echo "A/B done ($(( $(date +%s) - t0 )) s)"
for shape in vicuna-7b phi-1.5; do
  [ $(( $(date +%s) - t0 )) -gt 440 ] && { echo "skipped $shape (time)"; continue; }
  echo "== bench $shape, head quantized"
  timeout 110 "$N/pmpd" bench --backend cuda --shape "$shape" --bits 2:4 --prompt-tokens 128 --quantize-head \
    --json "$out/bench-$shape.json" > "$out/bench-$shape.md" 2>&1
  echo "rc $? ($(( $(date +%s) - t0 )) s)"
  grep -E "^\| (16|[2-4]-bit|[2-4] |PMPD|final norm)" "$out/bench-$shape.md" | head -20
done
echo "total $(( $(date +%s) - t0 )) s"
