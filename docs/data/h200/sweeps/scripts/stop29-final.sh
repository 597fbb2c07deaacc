#!/usr/bin/env bash
# stop 29 call 2: tables of the kept code (run.sh, four shapes), the 3-bit timeline, two items in flight again.
set -uo pipefail
PMPD_GPU_NO_GRAPH_RUN=1 timeout 360 bash tools/gpu/run.sh "$OUT/run" > /dev/null 2>&1; echo "run.sh rc=$?"
grep -E "PASSED|FAILED" "$OUT/run/tests.txt" | tail -3
grep -E "^\| (16|3|2)-bit|^\| PMPD" "$OUT/run/bench.md" | head -40
BITS=3:3 timeout 100 bash tools/gpu/timeline.sh /tmp/tl > /dev/null 2>&1; echo "timeline rc=$?"; cp /tmp/tl/timeline.md "$OUT/run/timeline-b3.md"; head -12 /tmp/tl/timeline.md
source tools/gpu/bundle_env.sh
b() { echo "== $*"; env "$@" timeout 60 "$root/bin/pmpd" bench --backend cuda --shape vicuna-7b --bits 2:3 --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
b PMPD_CUDA_GEMV_STREAM_AHEAD=1; b PMPD_CUDA_GEMV_STREAM_AHEAD=2
