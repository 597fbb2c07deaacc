#!/usr/bin/env bash
# On the GPU machine: the check of one kernel change in one call. Unpacks
# .gpu/bundle.tar.xz (tools/gpu/pack.sh), runs the CUDA tests and one `pmpd bench --backend
# cuda`, writes OUTDIR/tests.txt and OUTDIR/bench.md and prints their summary lines.
#   [SHAPE=vicuna-7b] [BITS=2:4] [EXTRA="--no-e2e"] bash tools/gpu/quick.sh [OUTDIR]
# OUTDIR defaults to $OUT (the device tool's output folder).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:-${OUT:?usage: quick.sh OUTDIR (or set OUT)}}
mkdir -p "$out"
source tools/gpu/bundle_env.sh
"$root/bin/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests.txt" 2>&1
# The sampling kernel's row split over one block and over a non-portable cluster of 16 too.
for c in 1 16; do
  PMPD_CUDA_SAMPLE_CLUSTER=$c "$root/bin/pmpd_tests" --gtest_filter='Cuda.Sample*' >>"$out/tests.txt" 2>&1
done
grep -E "PASSED|FAILED" "$out/tests.txt"
# shellcheck disable=SC2086  # EXTRA is a list of options
"$root/bin/pmpd" bench --backend cuda --shape "${SHAPE:-vicuna-7b}" --bits "${BITS:-2:4}" --prompt-tokens 128 \
  ${EXTRA:-} >"$out/bench.md" 2>&1
grep -E "^\| [0-9]|16 \(|bit \||PMPD|alternate|switch|stage|step|proj|attention|error" "$out/bench.md"
