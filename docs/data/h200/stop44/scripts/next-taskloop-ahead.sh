#!/usr/bin/env bash
# Prepared in stop 44, not run (the session's device time ran out): the task loop (the 4-bit
# and 2-bit down projections of Vicuna-7B, 7 bits, the one-block-an-SM instantiations) asking
# L2 for the item K past the one it loads next, as the 4-bit rolling GEMV now does two on.
# Here: pack the code as the main bundle (bash tools/gpu/pack.sh); git apply
# docs/data/h200/stop44/taskloop-ahead.diff; pack the variants
#   PMPD_PACK_CMAKE="-DCMAKE_CUDA_FLAGS=-DPMPD_CUDA_TASKLOOP_L2_AHEAD=1" bash tools/gpu/pack.sh tl1
#   PMPD_PACK_ONLY_PMPD=1 PMPD_PACK_CMAKE="-DCMAKE_CUDA_FLAGS=-DPMPD_CUDA_TASKLOOP_L2_AHEAD=2" bash tools/gpu/pack.sh tl2
# then revert it and clear the flag (PMPD_PACK_CMAKE="-DCMAKE_CUDA_FLAGS=" on the next pack);
# move models/pmpd-small aside for the call. Compiled here: no new spills (the two-block
# instantiations are left as they are; the one-block ones 96-128 registers, no spills).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant tl1 || exit 1
k1=$var
with_variant tl2 || exit 1
k2=$var
t0=$(date +%s)
N=$k1 t tl1
{
  for r in 1 2; do for arm in main k1 k2; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  for bits in 2 7 3; do for arm in main k1 k2; do N=${!arm}; echo "[$arm]"; b vicuna-7b $bits; done; done
} 2>&1 | tee "$out/ab-taskloop.txt"
echo "total $(( $(date +%s) - t0 )) s"
