#!/usr/bin/env bash
# stop 43 call 5 (prepared, not run: the device time ran out): pair tables written 16 bytes a
# store. Variants beside the main bundle (the code before): "tables4" (tables4.diff: the
# streaming GEMV's, 2..3 bits; pmpd alone will do) and "tables4all" (tables4-all.diff: also
# the 4-bit rolling GEMV's first slots and refills and the task loop's tables; pack it with both
# binaries, its tests cover every change). The tests of tables4all, then interleaved A/B pairs:
# Vicuna-7B 3 bits main / tables4 (two), 4 bits main / tables4all (two), 2 bits main /
# tables4all (one: its down projection runs the task loop), Zephyr-3B 3 bits main / tables4 (one).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant tables4 || exit 1
t4=$var
with_variant tables4all || exit 1
t4a=$var
t0=$(date +%s)
N=$t4a t tables4all
{
  for r in 1 2; do for arm in main t4; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done
  for r in 1 2; do for arm in main t4a; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  for arm in main t4a; do N=${!arm}; echo "[$arm]"; b vicuna-7b 2; done
  for arm in main t4; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
