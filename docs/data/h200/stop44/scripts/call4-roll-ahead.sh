#!/usr/bin/env bash
# stop 44 call 4: call 3's L2 prefetch two items on kept for the 4-bit rolling GEMV alone
# (variant "roll4", pmpd alone: the code committed after this call) and also given to the
# 5..8-bit rolling GEMV (variant "wide", both binaries: ../wide-ahead.diff), against the main
# bundle (stop 43's code). 4 bits main / roll4 twice; the CUDA tests of wide; --bits 3:4 (3
# bits, 4 bits and the PMPD schedule 4:32,3) main / roll4; 8 and 6 bits main / wide.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant roll4 || exit 1
r4=$var
with_variant wide || exit 1
wd=$var
t0=$(date +%s)
{
  for r in 1 2; do for arm in main r4; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  N=$wd t wide
  for arm in main r4; do echo "[$arm] --bits 3:4"
    timeout 150 "${!arm}/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:4 --prompt-tokens 128 --no-ops 2>&1 |
      grep -E "^\| (3-bit|4-bit|PMPD)|rror"; done
  for bits in 8 6; do for arm in main wd; do N=${!arm}; echo "[$arm]"; b vicuna-7b $bits; done; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
