#!/usr/bin/env bash
# stop 46 call 1 (H200): stop 44's row-lane-tables.diff at 4 bits only (stop 45 call 2's rl16
# variant, +0.8% then, its tests not run) made permanent (TableBuild = RowLaneShare at B == 4,
# no macro), packed as `rowlane` (both binaries) on top of the main bundle (a81baaf); its CUDA
# tests, an A/B against the main bundle (interleaved, stop 33's b helper and `--bits 3:4`), then
# the full `pmpd bench --backend cuda` of the faster build (4-bit mean) on the four shapes.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant rowlane || exit 1
rowlane=$var
t0=$(date +%s)
N=$rowlane t rowlane
{
  for r in 1 2 3; do for arm in main rowlane; do N=${!arm}; echo "[$arm]"; b vicuna-7b 4; done; done
  for arm in main rowlane; do N=${!arm}; echo "[$arm]"; b zephyr-3b 4; done
  for arm in main rowlane; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done
  for arm in main rowlane; do echo "[$arm] --bits 3:4"
    timeout 150 "${!arm}/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:4 --prompt-tokens 128 --no-ops 2>&1 |
      grep -E "^\| (3-bit|4-bit|PMPD)|rror"; done
} 2>&1 | tee "$out/ab.txt"
echo "A/B done ($(( $(date +%s) - t0 )) s)"
# The faster build at 4 bits (mean of the Vicuna-7B rows) takes the full bench.
mean() { awk -v a="[$1]" '$0 == a {getline; getline; if ($0 ~ /4-bit/) {split($0, f, "|"); s += f[4]; n++}} END {print (n ? s / n : 0)}' "$out/ab.txt"; }
m=$(mean main) r=$(mean rowlane)
best=main; awk -v m="$m" -v r="$r" 'BEGIN {exit !(r > m)}' && best=rowlane
echo "4-bit means: main $m, rowlane $r; full bench of $best" | tee "$out/choice.txt"
for shape in vicuna-7b zephyr-3b mobilellama-1.4b phi-1.5; do
  [ $(( $(date +%s) - t0 )) -gt 430 ] && { echo "skipped $shape (time)"; continue; }
  echo "== bench $shape"
  timeout 120 "${!best}/pmpd" bench --backend cuda --shape "$shape" --prompt-tokens 128 --json "$out/bench-$shape.json" > "$out/bench-$shape.md" 2>&1
  echo "rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^\| (16|[2-8]-bit|[2-8] |PMPD)" "$out/bench-$shape.md" | head -20
done
echo "total $(( $(date +%s) - t0 )) s"
