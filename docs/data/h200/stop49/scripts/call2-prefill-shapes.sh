#!/usr/bin/env bash
# stop 49 call 2 (H200): two shapes of the tensor cores' prompt attention against the kept one
# (main bundle: 4 warps a block, 64 queries, 64-key tiles; its code with the tile loops
# written over kKeyTiles, same kernel). Variants packed with both binaries by
# `bash tools/gpu/pack.sh NAME` with one constant changed in attention_prefill_mma.cu:
# w8 (kWarps = 8: 128 queries a block share each key tile), k32 (kKeys = 32). The CUDA tests of
# the main build (the variants: PrefillAttentionMatchesCpu), then the prompt rate (`pmpd bench --backend cuda --bits 3:3 --prompt-tokens P
# --new-tokens 8 --no-ops --schedule ""`), arms interleaved; last, whether a long prompt's
# decode rate depends on the prompt kernel (stop 49 call 1 read 3-bit 485.7 -> 461.3 tok/s at
# 3968 tokens over 8 new tokens): main with PMPD_CUDA_PREFILL_MMA=0 and 1, 64 new tokens.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin; with_variant
t0=$(date +%s)
with_variant w8; w8=$var
with_variant k32; k32=$var
t main
for arm in w8 k32; do  # the variants: the prompt attention's test alone
  timeout 60 "${!arm}/pmpd_tests" --gtest_filter='Cuda.PrefillAttention*' > "$out/tests-$arm.txt" 2>&1
  echo "tests $arm: rc $?"; grep -E "^\[  (PASSED|FAILED)" "$out/tests-$arm.txt"
done
bp() { local arm=$1 shape=$2 p=$3; echo "== $shape prompt $p, $arm"
  timeout 100 "${!arm}/pmpd" bench --backend cuda --shape "$shape" --bits 3:3 --prompt-tokens "$p" \
    --new-tokens 8 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|3)-bit|rror"; }
{
  for r in 1 2; do for p in 1920 3968; do for arm in main w8 k32; do
    [ $(( $(date +%s) - t0 )) -gt 400 ] && { echo "skipped (time)"; continue; }
    bp $arm vicuna-7b $p
  done; done; done
  for shape in zephyr-3b mobilellama-1.4b; do for arm in main w8 k32; do
    [ $(( $(date +%s) - t0 )) -gt 470 ] && { echo "skipped (time)"; continue; }
    bp $arm $shape 1920
  done; done
  for r in 1 2; do for a in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 540 ] && { echo "skipped (time)"; continue; }
    echo "== vicuna-7b prompt 3968, 64 new tokens, PMPD_CUDA_PREFILL_MMA=$a"
    PMPD_CUDA_PREFILL_MMA=$a timeout 100 "$main/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 3968 \
      --new-tokens 64 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|3)-bit|rror"
  done; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
