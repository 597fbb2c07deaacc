#!/usr/bin/env bash
# Prepared in stop 44, not run (the session's device time ran out): the 4-bit pair tables'
# slot offset carried in the lane bases' bytes 2..3 (relative-offset.diff), so that a look-up
# is PRMT + LDS [R + UR] without the IMAD that call 2's SASS shows before each of the 4-bit
# rolling GEMV's 64 look-ups an item (the task loop's 4-bit instantiations likewise). PTX
# checked here: only the 4-bit kernels change (roll: 192 fewer add.s32, three decode copies
# of 64; task loop: 64 fewer); every 2..3-bit and 5..8-bit kernel's PTX is identical.
# Here: pack the code as the main bundle (bash tools/gpu/pack.sh); git apply
# docs/data/h200/stop44/relative-offset.diff; bash tools/gpu/pack.sh reloff (both binaries);
# revert it; move models/pmpd-small aside for the call.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant reloff || exit 1
t0=$(date +%s)
N=$var t reloff
{
  for r in 1 2 3; do for arm in main var; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  for arm in main var; do N=${!arm}; echo "[$arm]"; b zephyr-3b 4; done
  for arm in main var; do echo "[$arm] --bits 3:4"
    timeout 150 "${!arm}/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:4 --prompt-tokens 128 --no-ops 2>&1 |
      grep -E "^\| (3-bit|4-bit|PMPD)|rror"; done
} 2>&1 | tee "$out/ab-reloff.txt"
echo "total $(( $(date +%s) - t0 )) s"
