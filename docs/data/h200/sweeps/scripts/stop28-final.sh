#!/usr/bin/env bash
# stop 28 final: run.sh tables on the kept code, then the 3-bit timeline (timeline.md only)
set -uo pipefail
PMPD_GPU_NO_GRAPH_RUN=1 bash tools/gpu/run.sh "$OUT/run" > /tmp/run.log 2>&1
echo "run rc=$?"; tail -5 /tmp/run.log
grep -E "PASSED|FAILED" "$OUT/run/tests.txt" | tail -3
BITS=3:3 bash tools/gpu/timeline.sh /tmp/tl > /tmp/tl.log 2>&1
echo "timeline rc=$?"; cp /tmp/tl/timeline.md "$OUT/timeline.md"; head -20 /tmp/tl/timeline.md
ls "$OUT/run"
