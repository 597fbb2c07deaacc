#!/usr/bin/env bash
# stop 54 call 3 (H100): Vicuna-7B end to end at 3 bits, three interleaved rounds of the plain
# model (16-bit LM head) and the model with the LM head quantized (`--quantize-head`), each run
# with its own 16-bit baseline: how far the 4x claim holds run to run. Main bundle = call 1's.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source tools/gpu/bundle_env.sh
P=$root/bin/pmpd
t0=$(date +%s)
{
  for round in 1 2 3; do
    for head in plain quantized; do
      [ $(( $(date +%s) - t0 )) -gt 480 ] && { echo "skipped round $round $head (time)"; continue; }
      echo "== round $round, LM head $head"
      extra=(); [ $head = quantized ] && extra=(--quantize-head)
      timeout 90 "$P" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "${extra[@]}" 2>&1 |
        grep -E "^\| (16|3)-bit|rror"
    done
  done
} 2>&1 | tee "$out/head-repeat.txt"
echo "total $(( $(date +%s) - t0 )) s"
