#!/usr/bin/env bash
# stop 48 call 6 (H200): after the review's mend (the final norm's fold through the same
# helpers as the layers' attention norms, no behaviour change meant): the CUDA tests, then
# Vicuna-7B at 3 bits with the head quantized (the step profile's head row shows the fold:
# 24 us in call 2; 34 without it).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin
t review
timeout 60 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --quantize-head \
  --schedule "" > "$out/bench-vicuna-7b.md" 2>&1
echo "rc $?"; grep -E "^\| (16|3-bit|3 |final norm)" "$out/bench-vicuna-7b.md"
