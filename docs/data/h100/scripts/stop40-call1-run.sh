#!/usr/bin/env bash
# stop 40 call 1, on the H100 (the machine the targets name): tools/gpu/run.sh on the
# four shapes (CUDA tests, CLI check, `pmpd bench --backend cuda` per shape), then the
# GEMV's ceilings (`--gemv-ceiling`) in the time left. Seconds of each part printed.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
t0=$(date +%s)
PMPD_GPU_NO_GRAPH_RUN=1 timeout 470 bash tools/gpu/run.sh "$out/run" >/dev/null 2>&1
echo "run.sh: rc $?, $(( $(date +%s) - t0 )) s"
grep -E "PASSED|FAILED|SKIPPED" "$out/run/tests.txt" | head
source tools/gpu/bundle_env.sh
left=$(( 560 - ($(date +%s) - t0) ))
[ "$left" -gt 30 ] && timeout "$left" "$root/bin/pmpd" bench --backend cuda --gemv-ceiling >"$out/ceiling.txt" 2>&1
echo "ceiling: rc $?, total $(( $(date +%s) - t0 )) s"
grep -E "^\| (16|[2-8]) |tok|copy" "$out/run/bench.md" | head -60
