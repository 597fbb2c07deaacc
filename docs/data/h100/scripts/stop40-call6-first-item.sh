#!/usr/bin/env bash
# stop 40 call 6, on the H100: a diagnostic timeline build (docs/data/h100/stop40-first-item.diff
# over the stop 40 code, packed with PMPD_PACK_CMAKE="-DPMPD_CUDA_TIMELINE=ON
# -DCMAKE_CUDA_FLAGS=-DPMPD_DIAG_FIRST"): in the streaming GEMV, thread 0 stamps mark 9 once
# its x registers have arrived and mark 7 once its first item's have too (instead of the row
# sums' marks), to tell which one the ~1.4 us from the wait's release to the first decoded item
# waits for. Vicuna-7B, 3 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
BITS=3:3 timeout 200 bash tools/gpu/timeline.sh "$out/timeline" >/dev/null 2>&1; echo "timeline rc $?"
ls "$out/timeline"
# Call 7 ran this script again on a second diagnostic build (the same diff, packed with
# -DCMAKE_CUDA_FLAGS=-DPMPD_DIAG_LATE_ITEM0): the first item's loads issued after x's instead of
# before the wait, to see whether x's loads are issued late because the SM still has the first
# items' loads outstanding.
