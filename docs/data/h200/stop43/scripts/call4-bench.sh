#!/usr/bin/env bash
# stop 43 call 4 (H200): the full `pmpd bench --backend cuda` of the kept code (cf61804: the
# row sums at once) on Vicuna-7B and Zephyr-3B: per-operator rows at every width, end to end
# per width and for the default PMPD schedule.
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/gpu/bundle_env.sh
t0=$(date +%s)
for shape in vicuna-7b zephyr-3b; do
  echo "== bench $shape"
  timeout 200 "$root/bin/pmpd" bench --backend cuda --shape "$shape" --prompt-tokens 128 --json "$out/bench-$shape.json" | tee "$out/bench-$shape.md"
  echo "($(( $(date +%s) - t0 )) s)"
done
