#!/usr/bin/env bash
# stop 49 call 4 (H200): the prompt pass's small kernels reworked after call 3's kernel list
# (the norms with the residual adds before them fused in and their f16 copy for cuBLAS
# written, the activation's f16 copy likewise, RoPE + KV store one block a token, float4
# element-wise kernels, the tensor-core attention's q loads). Main bundle = that build; variant
# `before` = the code before (stop 49's second commit), packed with `bash tools/gpu/pack.sh
# before` from a clean tree. The CUDA tests of the main build, then the prompt rate, arms
# interleaved (`pmpd bench --backend cuda --bits 3:3 --prompt-tokens P --new-tokens 8 --no-ops
# --schedule ""`), then ncu's kernel list of one 16-bit layer at 1920 tokens (as call 3).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin; with_variant
t0=$(date +%s)
with_variant before; before=$var
t main
bp() { local arm=$1 shape=$2 p=$3; echo "== $shape prompt $p, $arm"
  timeout 100 "${!arm}/pmpd" bench --backend cuda --shape "$shape" --bits 3:3 --prompt-tokens "$p" \
    --new-tokens 8 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|3)-bit|rror"; }
{
  for sp in vicuna-7b:128 vicuna-7b:512 vicuna-7b:1920 phi-1.5:512 zephyr-3b:512 vicuna-7b:128 vicuna-7b:1920; do
    for arm in before main; do
      [ $(( $(date +%s) - t0 )) -gt 300 ] && { echo "skipped (time)"; continue; }
      bp $arm "${sp%%:*}" "${sp##*:}"
    done
  done
} 2>&1 | tee "$out/ab.txt"
if [ $(( $(date +%s) - t0 )) -lt 320 ]; then
  timeout 60 /usr/local/cuda/bin/ncu --metrics gpu__time_duration.sum --csv --launch-skip 128 --launch-count 16 \
    "$main/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 1920 --new-tokens 2 --no-ops --schedule "" \
    > "$out/p1920.csv" 2> "$out/p1920.err"
  python3 - "$out/p1920.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value")
for r in rows[1:]: print(f"{r[vi]:>12} ns {r[ki][:100]}")
PY
fi
echo "total $(( $(date +%s) - t0 )) s"
