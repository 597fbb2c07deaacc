#!/usr/bin/env bash
# stop 44 call 3: each streaming (2..3 bits) and rolling (4 bits) GEMV warp asks L2 for its item
# D on (prefetch.global.L2, lanes 0..4B-1 a line each) beside loading the next one into
# registers: more bytes in flight than one item a warp without registers. Variants packed with
# PMPD_PACK_CMAKE="-DCMAKE_CUDA_FLAGS=-DPMPD_CUDA_ITEM_L2_AHEAD=D" (pmpd alone): l2ahead2 and
# l2ahead3; the main bundle (the code of stop 43, D = 0: no prefetch) is the control.
# Interleaved A/B rows: Vicuna-7B 3 bits (two rounds), 2 bits, 4 bits; Zephyr-3B 3 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, with_variant; main = the main bundle's bin
with_variant l2ahead2 || exit 1
d2=$var
with_variant l2ahead3 || exit 1
d3=$var
t0=$(date +%s)
{
  for r in 1 2; do for arm in main d2 d3; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done
  for bits in 2 4; do for arm in main d2 d3; do N=${!arm}; echo "[$arm]"; b vicuna-7b $bits; done; done
  for arm in main d2 d3; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
