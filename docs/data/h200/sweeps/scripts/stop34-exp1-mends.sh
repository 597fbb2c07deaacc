#!/usr/bin/env bash
# stop 34 call 1: the review's mends of stop 33 (one row sum, value and store for the task
# loop's, the streaming GEMV's and the column slices' epilogues). PTX of every kernel is
# unchanged but the six sliced instantiations' epilogue (two address instructions fewer).
# The CUDA tests and Vicuna-7B's bench on the mended code (tools/gpu/quick.sh); then 3 bits
# end to end, the mended build against stop 33's (.gpu/head.tar.xz, cf4b8ac) interleaved, on
# the shapes whose down projections run the sliced kernel. Builds for sm_90 alone
# (-DCMAKE_CUDA_ARCHITECTURES=90-real: the device tool carries at most 64 MiB).
set -uo pipefail
out=${OUT:-/tmp/out}
SHAPE=vicuna-7b BITS=2:4 bash tools/gpu/quick.sh "$out"
source docs/data/h200/sweeps/scripts/stop34-lib.sh  # new: mended; before: stop 33
for _ in 1 2 3; do
  for s in vicuna-7b zephyr-3b; do ab $s 3; done
done
