#!/usr/bin/env bash
# stop 35 call 6: a decode step block by block at 3 and 4 bits on the kept code (the rolling
# 4-bit GEMV; the timeline build, .gpu/timeline.tar.xz), Vicuna-7B.
set -uo pipefail
out=${OUT:-/tmp/out}
SHAPE=vicuna-7b BITS=3:4 bash tools/gpu/timeline.sh "$out/timeline" | grep -E "^## |launches|^\| (q|attention|o|gate|down)"
