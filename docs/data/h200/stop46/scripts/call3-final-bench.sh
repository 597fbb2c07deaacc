#!/usr/bin/env bash
# stop 46 call 3 (H200): the full `pmpd bench --backend cuda` of the stop's final code (3b78f09:
# the row-lane 4-bit tables and the wide decoder's IMAD pack) on Vicuna-7B and Phi-1.5 (call 2
# ran out of time before Phi-1.5), main bundle only.
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/gpu/bundle_env.sh
t0=$(date +%s)
for shape in vicuna-7b phi-1.5; do
  echo "== bench $shape"
  timeout 200 "$root/bin/pmpd" bench --backend cuda --shape "$shape" --prompt-tokens 128 --json "$out/bench-$shape.json" > "$out/bench-$shape.md" 2>&1
  echo "rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^\| (16|[2-8]-bit|[2-8] |PMPD)" "$out/bench-$shape.md"
done
