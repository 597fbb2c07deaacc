#!/usr/bin/env bash
# stop 46 call 2 (H200): the wide decoder (5..8 bits) packing a weight pair with IMAD (FMA pipe)
# instead of PRMT (ALU), `imad` = the kept code (c0ec178, packed as `rowlane` in call 1) built
# with -DCMAKE_CUDA_FLAGS=-DPMPD_CUDA_WIDE_PACK_IMAD=1 (both binaries); its CUDA tests, an A/B
# against `rowlane` (interleaved, stop 33's b helper), then the full bench of Phi-1.5 (call 1
# ran out of time before it) on `rowlane`.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant
with_variant rowlane || exit 1; rowlane=$var
with_variant imad || exit 1; imad=$var
t0=$(date +%s)
N=$imad t imad
{
  for r in 1 2; do for bits in 8 6 5 7; do for arm in rowlane imad; do N=${!arm}; echo "[$arm]"; b vicuna-7b $bits; done; done; done
} 2>&1 | tee "$out/ab.txt"
echo "A/B done ($(( $(date +%s) - t0 )) s)"
echo "== bench phi-1.5"
timeout 120 "$rowlane/pmpd" bench --backend cuda --shape phi-1.5 --prompt-tokens 128 --json "$out/bench-phi-1.5.json" > "$out/bench-phi-1.5.md" 2>&1
echo "rc $?"; grep -E "^\| (16|[2-8]-bit|[2-8] |PMPD)" "$out/bench-phi-1.5.md"
echo "total $(( $(date +%s) - t0 )) s"
