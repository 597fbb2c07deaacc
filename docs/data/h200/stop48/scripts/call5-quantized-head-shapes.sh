#!/usr/bin/env bash
# stop 48 call 5 (H200): the stop's final code (main bundle, a1b8270's tree), the full bench
# with the LM head quantized of the three shapes call 2 did not run that way:
# `pmpd bench --backend cuda --shape S --bits 2:4 --prompt-tokens 128 --quantize-head`.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # N = the main bundle's bin
t0=$(date +%s)
for shape in zephyr-3b mobilellama-1.4b phi-1.5; do
  [ $(( $(date +%s) - t0 )) -gt 200 ] && { echo "skipped $shape (time)"; continue; }
  echo "== bench $shape, head quantized"
  timeout 90 "$N/pmpd" bench --backend cuda --shape "$shape" --bits 2:4 --prompt-tokens 128 --quantize-head \
    --json "$out/bench-$shape-quantized.json" > "$out/bench-$shape-quantized.md" 2>&1
  echo "rc $? ($(( $(date +%s) - t0 )) s)"
  grep -E "^\| (16|[2-4]-bit|[2-4] |PMPD|final norm)" "$out/bench-$shape-quantized.md" | head -20
done
echo "total $(( $(date +%s) - t0 )) s"
