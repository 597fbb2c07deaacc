#!/usr/bin/env bash
# stop 50 call 1 (H200): the CUDA tests (stop 49's norm test and this stop's prefill-cache
# test run on a GPU for the first time), then the prefill cache off / on
# (PMPD_CUDA_PREFILL_CACHE=1, as --prefill-cache sets it), arms interleaved, prompt tokens/s
# (`pmpd bench --backend cuda --bits B:B --prompt-tokens P --new-tokens 8 --no-ops --schedule ""`;
# the bench times its second generation, so the cache is filled by the first), then the
# decode right after a 1920-token prompt with the tensor-core and the f32 prompt attention
# (PMPD_CUDA_PREFILL_MMA=0), two rounds, with nvidia-smi logging the clocks and power every
# 100 ms throughout. Main bundle = this stop's code (`bash tools/gpu/pack.sh`).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin
t0=$(date +%s)
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 100 > "$out/smi.csv" 2>&1 &
smi=$!
mark() { echo "$(date +%H:%M:%S.%N | cut -c1-12) $*" >> "$out/marks.txt"; }
mark tests; t main
bp() { local arm=$1 shape=$2 p=$3 bits=$4; shift 4; echo "== $shape prompt $p, $bits bits, $arm"; mark "$shape $p $bits $arm"
  env "$@" timeout 100 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens "$p" \
    --new-tokens 8 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|$bits)-bit|rror|prefill cache"; }
{
  for sp in vicuna-7b:128:3 vicuna-7b:512:3 vicuna-7b:1920:3 vicuna-7b:16:3 vicuna-7b:32:3 vicuna-7b:128:6 \
            zephyr-3b:128:3 phi-1.5:128:3 mobilellama-1.4b:128:3 vicuna-7b:128:3; do
    IFS=: read -r shape p bits <<< "$sp"
    [ $(( $(date +%s) - t0 )) -gt 380 ] && { echo "skipped $sp (time)"; continue; }
    bp off "$shape" "$p" "$bits"
    bp on "$shape" "$p" "$bits" PMPD_CUDA_PREFILL_CACHE=1
  done
} 2>&1 | tee "$out/cache.txt"
dp() { local arm=$1; shift; echo "== decode after 1920 prompt tokens, $arm"; mark "decode $arm"
  env "$@" timeout 100 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 1920 \
    --new-tokens 64 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|3)-bit|rror"; }
{
  for round in 1 2; do
    [ $(( $(date +%s) - t0 )) -gt 500 ] && { echo "skipped round $round (time)"; continue; }
    dp mma; dp f32 PMPD_CUDA_PREFILL_MMA=0
  done
} 2>&1 | tee "$out/decode.txt"
kill $smi
echo "total $(( $(date +%s) - t0 )) s"
