#!/usr/bin/env bash
# stop 47 call 1 (H200): the LM head quantized (`pmpd quantize --quantize-head`, bench
# `--quantize-head`), main bundle. The CUDA tests (SyntheticShapesRunEndToEnd now runs the
# tiny shape with its head quantized against the CPU at 2, 3, 4 and 8 bits), then per shape
# `pmpd bench --backend cuda --bits 2:4 --prompt-tokens 128` with the 16-bit head and with
# the quantized one, one after the other: the per-operator rows, the step profile (its "final
# norm + LM head" row) and the end-to-end rows (2, 3, 4 bits, PMPD 4:32,3, 16-bit).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t; N = the main bundle's bin
t0=$(date +%s)
t head
for shape in phi-1.5 mobilellama-1.4b vicuna-7b zephyr-3b; do
  for head in f16 quantized; do
    [ $(( $(date +%s) - t0 )) -gt 470 ] && { echo "skipped $shape $head (time)"; continue; }
    flag=; [ $head = quantized ] && flag=--quantize-head
    echo "== bench $shape, head $head"
    timeout 110 "$N/pmpd" bench --backend cuda --shape "$shape" --bits 2:4 --prompt-tokens 128 $flag \
      --json "$out/bench-$shape-$head.json" > "$out/bench-$shape-$head.md" 2>&1
    echo "rc $? ($(( $(date +%s) - t0 )) s)"
    grep -E "^\| (16|[2-4]-bit|[2-4] |PMPD|final norm)" "$out/bench-$shape-$head.md" | head -20
  done
done
echo "total $(( $(date +%s) - t0 )) s"
