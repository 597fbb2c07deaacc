#!/usr/bin/env bash
# Prepared in stop 44, not run: pair tables built by row lanes (row-lane-tables.diff,
# RowLaneShare): the 16-byte stores of stop 43's tables4 without its extra, conflicting
# centroid loads; the layout is checked by scripts/check-row-lane-layout.py, and at
# PMPD_CUDA_ROW_LANE_TABLES=0 the PTX is identical to the code's. Here: pack the code as the
# main bundle; git apply docs/data/h200/stop44/row-lane-tables.diff; pack
#   PMPD_PACK_ONLY_PMPD=1 PMPD_PACK_CMAKE="-DCMAKE_CUDA_FLAGS=-DPMPD_CUDA_ROW_LANE_TABLES=16" bash tools/gpu/pack.sh rl16
#   PMPD_PACK_CMAKE="-DCMAKE_CUDA_FLAGS=-DPMPD_CUDA_ROW_LANE_TABLES=24" bash tools/gpu/pack.sh rl24
# (16: 4 bits alone, the rolling GEMV's refills and first slots, the 4-bit task loop; 24: also
# 3 bits, the streaming GEMV's pre-wait build and the 3-bit task loop); revert it, clear the
# flag on the next pack (-DCMAKE_CUDA_FLAGS=), move models/pmpd-small aside for the call.
# Compiled here with both masks: no spills anywhere, registers within 6 of the code's.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant rl16 || exit 1
r16=$var
with_variant rl24 || exit 1
r24=$var
t0=$(date +%s)
N=$r24 t rl24
{
  for r in 1 2; do for arm in main r16 r24; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  for r in 1 2; do for arm in main r24; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done
  for arm in main r24; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done
} 2>&1 | tee "$out/ab-row-lane.txt"
echo "total $(( $(date +%s) - t0 )) s"
