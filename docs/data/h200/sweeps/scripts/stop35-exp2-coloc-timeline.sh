#!/usr/bin/env bash
# stop 35 call 2: why co-residence lost (call 1): the timeline build (.gpu/timeline.tar.xz) of
# the same code, Vicuna-7B 3 and 2 bits, at PMPD_CUDA_COLOC=0, 96 and 88.
set -uo pipefail
out=${OUT:-/tmp/out}
for c in 0 96 88; do
  echo "=== PMPD_CUDA_COLOC=$c"
  PMPD_CUDA_COLOC=$c SHAPE=vicuna-7b BITS=2:3 bash tools/gpu/timeline.sh "$out/coloc$c" | grep -vE "^$"
done
