#!/usr/bin/env bash
# stop 35 call 4: the rolling GEMV also over column slices (the 4-bit down projections, x from
# fragments). tools/gpu/quick.sh (CUDA tests, Vicuna-7B bench at 2..4 bits with the PMPD
# schedule) into $OUT, then end to end at 4 bits, interleaved: everything rolling (default),
# the down projections on the task loop (PMPD_CUDA_GEMV_SLICES=0; at 4 bits only the sliced
# roll reads it), and no rolling GEMV (PMPD_CUDA_GEMV_ROLL=0), on the four shapes.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
SHAPE=vicuna-7b BITS=2:4 bash tools/gpu/quick.sh "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
r3() { b "$@"; b "$@" PMPD_CUDA_GEMV_SLICES=0; b "$@" PMPD_CUDA_GEMV_ROLL=0; }
for _ in 1 2; do r3 vicuna-7b 4; done
# shellcheck disable=SC2086  # $s is "SHAPE BITS", split on purpose
for s in "zephyr-3b 4" "mobilellama-1.4b 4" "phi-1.5 4"; do r3 $s; done
