#!/usr/bin/env bash
# stop 43 call 2 (H200): the GEMV epilogue's row sums with every warp's partial loaded at once
# and a gate row's up row taken by shuffle (variant "rowsum", .gpu/rowsum.tar.xz: both binaries)
# against the main bundle (the code before), in one call: the CUDA tests of each build, then
# Vicuna-7B end to end at 3 bits (three pairs) and 2 bits (two), interleaved, Zephyr-3B at 3
# bits (one pair), and the per-operator rows at 3 bits of each build.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant, per_operator; main = the main bundle's bin
with_variant rowsum || exit 1
t0=$(date +%s)
N=$main t main
N=$var t rowsum
{
  for r in 1 2 3; do for arm in main var; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done
  for r in 1 2; do for arm in main var; do N=${!arm}; echo "[$arm]"; b vicuna-7b 2; done; done
  for arm in main var; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done
  per_operator main var
} 2>&1 | tee "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
