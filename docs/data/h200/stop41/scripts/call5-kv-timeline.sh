#!/usr/bin/env bash
# stop 41 call 5 (H200): the timeline build of call 4's code at 3 bits, the KV prefetch off and
# on (PMPD_CUDA_KV_PREFETCH=0/1), 128-token prompt: do the attention's scores shrink?
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
for v in 0 1; do
  PMPD_CUDA_KV_PREFETCH=$v BITS=3:3 timeout 120 bash tools/gpu/timeline.sh "$out/kv$v" >/dev/null 2>&1; echo "kv $v rc $?"
  grep -E "^\| (q|attention|o |gate|down)" "$out/kv$v/timeline.md" | grep -E "stream|attention \|" ; grep -E "^\| 3-bit" "$out/kv$v/bench.md"
done
