#!/usr/bin/env bash
# stop 33 call 3: the kept code (column slices at 3 bits where a block has 3+ tasks, the
# acq_rel meeting): the CUDA tests and Vicuna-7B's bench (tools/gpu/quick.sh), then 3 bits end
# to end on the other shapes, the slices' rule against the task loop.
set -uo pipefail
out=${OUT:-/tmp/out}
SHAPE=vicuna-7b BITS=2:4 bash tools/gpu/quick.sh "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
for s in zephyr-3b phi-1.5 mobilellama-1.4b vicuna-7b; do
  b $s 3 PMPD_CUDA_GEMV_SLICES=0
  b $s 3
done
