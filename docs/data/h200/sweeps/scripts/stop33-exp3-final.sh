#!/usr/bin/env bash
# stop 33 call 3: the kept code (column slices at 3 bits where a block has 3+ tasks, the
# acq_rel meeting): the CUDA tests and Vicuna-7B's bench (tools/gpu/quick.sh), then 3 bits end
# to end on the other shapes, the slices' rule against the task loop.
set -uo pipefail
out=${OUT:-/tmp/out}
SHAPE=vicuna-7b BITS=2:4 bash tools/gpu/quick.sh "$out"
source tools/gpu/bundle_env.sh
b() { local shape=$1 bits=$2; shift 2; echo "== $shape $bits $*"
  env "$@" timeout 90 "$root/bin/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens 128 \
    --no-ops --schedule "" 2>&1 | grep -E "^\| $bits-bit|rror"; }
for s in zephyr-3b phi-1.5 mobilellama-1.4b vicuna-7b; do
  b $s 3 PMPD_CUDA_GEMV_SLICES=0
  b $s 3
done
