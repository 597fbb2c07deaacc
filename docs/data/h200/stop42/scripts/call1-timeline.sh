#!/usr/bin/env bash
# stop 42 call 1 (H200): the timeline build with the streaming GEMV's last-round marks 11..14
# (warp 0's last two items in, the last busy warp's last item in and its loop's end) and the
# attention's mark 10 (thread 0's first cache row in); Vicuna-7B at 2..4 bits, twice.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
for run in 1 2; do
  BITS=2:4 timeout 240 bash tools/gpu/timeline.sh "$out/timeline$run" >/dev/null 2>&1; echo "timeline $run rc $?"
  grep -E "^\| |launches|Summed|^## " "$out/timeline$run/timeline.md" | grep -vE "^\| [0-9]+ \| attention" | head -60
done
grep -E "^\| [2-4]-bit" "$out/timeline1/bench.md"
