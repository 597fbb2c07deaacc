#!/usr/bin/env bash
# stop 41 call 2 (H200): the timeline build of the current code (stop 40's start stamp read
# before the record's claim), Vicuna-7B at 2..4 bits (tools/gpu/timeline.sh), then the same
# step's tokens/s (the timeline build's own bench).
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
BITS=2:4 timeout 300 bash tools/gpu/timeline.sh "$out/timeline" >/dev/null 2>&1; echo "timeline rc $?"
grep -E "^\| |launches|Summed|spread|^## " "$out/timeline/timeline.md" | grep -vE "^\| [0-9]+ \| attention" | head -80
grep -E "^\| [2-4]-bit" "$out/timeline/bench.md"
