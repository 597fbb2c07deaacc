#!/usr/bin/env bash
# stop 48 call 2 (H200): the final norm at decode no longer a kernel of its own: folded into the
# last layer's down projection where the head is quantized and both run on the tensor-core GEMV
# (RMSNorm models), else the head GEMV's prologue. Main bundle = that build; variant `waves` =
# call 1's binary (the streaming GEMV in waves, the separate norm). The CUDA tests, then an
# interleaved A/B at 3 bits (end to end), 16-bit head and quantized head, on the four shapes,
# then the full bench of Vicuna-7B with each head.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t, with_variant; main = the main bundle's bin
with_variant waves || exit 1
waves=$var
t0=$(date +%s)
t fold
bh() { local arm=$1 shape=$2 head=$3 flag=; [ "$head" = quantized ] && flag=--quantize-head
  echo "== [$arm] $shape 3 bits, head $head"
  timeout 90 "${!arm}/pmpd" bench --backend cuda --shape "$shape" --bits 3:3 --prompt-tokens 128 $flag \
    --no-ops --schedule "" 2>&1 | grep -E "^\| 3-bit|rror"; }
{
  for shape in vicuna-7b zephyr-3b mobilellama-1.4b phi-1.5; do for head in f16 quantized; do for arm in waves main; do
    [ $(( $(date +%s) - t0 )) -gt 330 ] && { echo "skipped (time)"; continue; }
    bh $arm $shape $head
  done; done; done
  for shape in vicuna-7b mobilellama-1.4b; do for arm in waves main; do
    [ $(( $(date +%s) - t0 )) -gt 380 ] && { echo "skipped (time)"; continue; }
    bh $arm $shape quantized
  done; done
} 2>&1 | tee "$out/ab.txt"
echo "A/B done ($(( $(date +%s) - t0 )) s)"
for head in quantized f16; do
  [ $(( $(date +%s) - t0 )) -gt 450 ] && { echo "skipped $head (time)"; continue; }
  flag=; [ $head = quantized ] && flag=--quantize-head
  echo "== bench vicuna-7b, head $head"
  timeout 100 "$main/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:4 --prompt-tokens 128 $flag \
    --json "$out/bench-vicuna-7b-$head.json" > "$out/bench-vicuna-7b-$head.md" 2>&1
  echo "rc $? ($(( $(date +%s) - t0 )) s)"
  grep -E "^\| (16|[2-4]-bit|[2-4] |PMPD|final norm)" "$out/bench-vicuna-7b-$head.md" | head -20
done
echo "total $(( $(date +%s) - t0 )) s"
