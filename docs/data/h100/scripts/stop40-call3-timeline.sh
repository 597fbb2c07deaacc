#!/usr/bin/env bash
# stop 40 call 3, on the H100: where a decode step's time goes, block by block (the timeline
# build, tools/gpu/timeline.sh, Vicuna-7B at 2, 3 and 4 bits), and what a kernel boundary costs
# here (`pmpd bench --sync-costs`, twice).
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
BITS=2:4 timeout 240 bash tools/gpu/timeline.sh "$out/timeline" >/dev/null 2>&1; echo "timeline rc $?"
grep -E "^\| |launches|Summed" "$out/timeline/timeline.md" | head -60
source tools/gpu/bundle_env.sh
for r in 1 2; do timeout 120 "$root/bin/pmpd" bench --backend cuda --sync-costs 2>&1 | tee "$out/sync-costs-$r.txt" | tail -12; done
