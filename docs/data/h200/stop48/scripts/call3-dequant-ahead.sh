#!/usr/bin/env bash
# stop 48 call 3 (H200): the prompt pass's next matrix dequantized on a side stream while cuBLAS
# multiplies the current one (PMPD_CUDA_DEQUANT_AHEAD=1, the new default; 0: one buffer, in
# order, as before). Main bundle = that build. The CUDA tests (PromptDequantizedAheadMatchesInOrder
# new), then an interleaved A/B of the prompt rate, `pmpd bench --backend cuda --bits 3:4
# --prompt-tokens P --new-tokens 8 --no-ops --schedule ""` (its "prompt tokens/s" column; the
# 16-bit row is cuBLAS on f16 weights either way), Vicuna-7B at P = 128, 512, 1920 and the
# other shapes at 128, then the full bench of Vicuna-7B.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin
t0=$(date +%s)
t ahead
bp() { local shape=$1 p=$2 a=$3; echo "== $shape prompt $p, PMPD_CUDA_DEQUANT_AHEAD=$a"
  PMPD_CUDA_DEQUANT_AHEAD=$a timeout 100 "$N/pmpd" bench --backend cuda --shape "$shape" --bits 3:4 --prompt-tokens "$p" \
    --new-tokens 8 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|[34])-bit|rror"; }
{
  for r in 1 2; do for p in 128 512 1920; do for a in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 300 ] && { echo "skipped (time)"; continue; }
    bp vicuna-7b $p $a
  done; done; done
  for shape in zephyr-3b mobilellama-1.4b phi-1.5; do for a in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 400 ] && { echo "skipped (time)"; continue; }
    bp $shape 128 $a
  done; done
} 2>&1 | tee "$out/ab.txt"
echo "A/B done ($(( $(date +%s) - t0 )) s)"
[ $(( $(date +%s) - t0 )) -gt 460 ] && { echo "skipped the full bench (time)"; exit 0; }
timeout 100 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:4 --prompt-tokens 128 \
  --json "$out/bench-vicuna-7b.json" > "$out/bench-vicuna-7b.md" 2>&1
echo "rc $? ($(( $(date +%s) - t0 )) s)"
grep -E "^\| (16|[2-4]-bit|[2-4] |PMPD|final norm)" "$out/bench-vicuna-7b.md" | head -20
echo "total $(( $(date +%s) - t0 )) s"
