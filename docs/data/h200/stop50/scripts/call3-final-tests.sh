#!/usr/bin/env bash
# stop 50 call 3 (H200): the CUDA tests of the stop's final code (the prefill-cache test's
# no-room case added after call 2), then the prefill cache off / on at 4 and 8 bits
# (`pmpd bench --backend cuda --shape vicuna-7b --bits B:B --prompt-tokens P --new-tokens 8
# --no-ops --schedule ""`) and for the PMPD schedule 4:32,3 at 512 prompt tokens. Main bundle = the final code (`bash tools/gpu/pack.sh`).
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # t; N = the main bundle's bin
t0=$(date +%s)
t main
bp() { local arm=$1 p=$2 bits=$3; shift 3; echo "== vicuna-7b prompt $p, $bits bits, $arm"
  env "$@" timeout 100 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits "$bits:$bits" --prompt-tokens "$p" \
    --new-tokens 8 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|$bits)-bit|rror|prefill cache"; }
{
  for pb in 128:4 512:8 128:8; do
    [ $(( $(date +%s) - t0 )) -gt 220 ] && { echo "skipped $pb (time)"; continue; }
    bp off "${pb%%:*}" "${pb##*:}"
    bp on "${pb%%:*}" "${pb##*:}" PMPD_CUDA_PREFILL_CACHE=1
  done
  # a PMPD schedule (prompt at 4 bits, 32 steps at 4, then 3) with the cache off / on
  for arm in off on; do
    [ $(( $(date +%s) - t0 )) -gt 260 ] && { echo "skipped pmpd $arm (time)"; continue; }
    echo "== vicuna-7b prompt 512, PMPD 4:32,3, $arm"
    env $([ $arm = on ] && echo PMPD_CUDA_PREFILL_CACHE=1) timeout 120 "$N/pmpd" bench --backend cuda --shape vicuna-7b \
      --bits 3:4 --prompt-tokens 512 --new-tokens 128 --no-ops --schedule auto 2>&1 | grep -E "^\| |rror|prefill cache"
  done
} 2>&1 | tee "$out/cache.txt"
echo "total $(( $(date +%s) - t0 )) s"
