#!/usr/bin/env bash
# stop 36 call 2: (a) PMPD_CUDA_GEMV_LAZY=32 (every table after the wait, while x and the
# centroids are on their way; no builds between items; the sliced kernel's idle warps load
# nothing) against 0 (stop 35's kernels), end to end, interleaved; (b) the attention's
# team-sum choice made once (.gpu/teamsums.tar.xz, run with LAZY=0) against the main bundle
# (LAZY=0). Rows also go to OUT/ab.txt as they come.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
ts=$(mktemp -d) && tar -C "$ts" -xJf .gpu/teamsums.tar.xz
{
for _ in 1 2 3; do
  for l in 32 0; do b vicuna-7b 3 PMPD_CUDA_GEMV_LAZY=$l; done
  echo "-- teamsums variant"; N=$ts/bin b vicuna-7b 3 PMPD_CUDA_GEMV_LAZY=0
done
for l in 32 0; do b vicuna-7b 2 PMPD_CUDA_GEMV_LAZY=$l; done
for l in 32 0; do b zephyr-3b 3 PMPD_CUDA_GEMV_LAZY=$l; done
echo "-- teamsums variant"; N=$ts/bin b zephyr-3b 3 PMPD_CUDA_GEMV_LAZY=0
} 2>&1 | tee "$out/ab.txt"
