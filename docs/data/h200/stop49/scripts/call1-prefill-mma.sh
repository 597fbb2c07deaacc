#!/usr/bin/env bash
# stop 49 call 1 (H200): the prompt's attention on the tensor cores (attention_prefill_mma.cu,
# the new default; PMPD_CUDA_PREFILL_MMA=0: the f32 kernel as before). Main bundle = that
# build. The CUDA tests (PrefillAttentionMatchesCpu runs both kernels), then an interleaved
# A/B of the prompt rate, `pmpd bench --backend cuda --bits 3:3 --prompt-tokens P --new-tokens 8
# --no-ops --schedule ""` (its "prompt tokens/s" column, 16-bit and 3-bit rows), per shape and
# prompt length, each arm once a round.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin
t0=$(date +%s)
t mma
t f32 PMPD_CUDA_PREFILL_MMA=0
bp() { local shape=$1 p=$2 a=$3; echo "== $shape prompt $p, PMPD_CUDA_PREFILL_MMA=$a"
  PMPD_CUDA_PREFILL_MMA=$a timeout 100 "$N/pmpd" bench --backend cuda --shape "$shape" --bits 3:3 --prompt-tokens "$p" \
    --new-tokens 8 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|3)-bit|rror"; }
{
  for r in 1 2; do for p in 128 512 1920 3968; do for a in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 330 ] && { echo "skipped (time)"; continue; }
    bp vicuna-7b $p $a
  done; done; done
  for shape in zephyr-3b phi-1.5 mobilellama-1.4b; do for p in 512 1920; do for a in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 480 ] && { echo "skipped (time)"; continue; }
    bp $shape $p $a
  done; done; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
