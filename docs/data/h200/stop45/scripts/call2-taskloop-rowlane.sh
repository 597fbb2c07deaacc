#!/usr/bin/env bash
# stop 45 call 2 (H200): stop 44's prepared taskloop-ahead.diff (variants tl1, tl2) and
# row-lane-tables.diff (rl16, rl24) in one A/B against the main bundle (a81baaf: the 4-bit
# relative slot offset), all four packed on top of it as their stop 44 script headers say
# (next-taskloop-ahead.sh, next-row-lane-tables.sh); no tests here (the kept one's run with its
# full bench in the next call). Interleaved rows, `pmpd bench --backend cuda --shape S --bits
# B:B --prompt-tokens 128 --no-ops --schedule ""` (stop 33's b helper).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
for v in tl1 tl2 rl16 rl24; do with_variant $v || exit 1; printf -v "$v" %s "$var"; done
t0=$(date +%s)
{
  for r in 1 2; do for arm in main tl1 tl2 rl16 rl24; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  for bits in 2 7; do for arm in main tl1 tl2; do N=${!arm}; echo "[$arm]"; b vicuna-7b $bits; done; done
  for r in 1 2; do for arm in main rl24; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done
  for arm in main rl24; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
