#!/usr/bin/env bash
# On the GPU machine: kernel builds side by side in one call. The main bundle
# (.gpu/bundle.tar.xz, tools/gpu/pack.sh) is build "main"; each NAME is a variant packed with
# `bash tools/gpu/pack.sh NAME` (.gpu/NAME.tar.xz: its two binaries). For every build: the
# CUDA tests (OUTDIR/tests-BUILD.txt) and `pmpd bench --backend cuda` of each shape
# (OUTDIR/SHAPE-BUILD.md); the per-operator and end-to-end rows are printed build by build.
#   [SHAPES="vicuna-7b phi-1.5"] [BITS=3:4] [BENCH_ARGS=...] bash tools/gpu/ab.sh OUTDIR NAME...
# With RUN_BEST=1 it then runs tools/gpu/run.sh OUTDIR/run with the build whose per-operator
# times (attention + MLP, summed over the widths and shapes benched) are the lowest.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: ab.sh OUTDIR NAME...}
shift
mkdir -p "$out"
source tools/gpu/bundle_env.sh
builds=(main "$@")
for b in "$@"; do
  mkdir -p "$root/$b" && tar -C "$root/$b" -xJf ".gpu/$b.tar.xz" || exit 1
done
bin_of() { [ "$1" = main ] && echo "$root/bin" || echo "$root/$1/bin"; }
best="" best_us=""
for b in "${builds[@]}"; do
  dir=$(bin_of "$b")
  echo "== build $b"
  "$dir/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests-$b.txt" 2>&1
  grep -E "PASSED|FAILED" "$out/tests-$b.txt"
  total=0
  for shape in ${SHAPES:-vicuna-7b}; do
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
    "$dir/pmpd" bench --backend cuda --shape "$shape" --bits "${BITS:-2:4}" ${BENCH_ARGS:---prompt-tokens 128} \
      >"$out/$shape-$b.md" 2>&1
    echo "-- $shape"
    grep -E "^\| ([0-9]|16 \(|[0-9]+-bit|PMPD)" "$out/$shape-$b.md"
    us=$(awk -F'|' '$2 ~ /^ [2-8] $/ {s += $3 + $7} END {print s + 0}' "$out/$shape-$b.md")
    total=$(awk "BEGIN {print $total + $us}")
  done
  echo "per-operator total: $total us"
  if [ -z "$best" ] || awk "BEGIN {exit !($total < $best_us)}"; then best=$b best_us=$total; fi
done
echo "fastest build: $best ($best_us us)"
if [ "${RUN_BEST:-0}" = 1 ]; then
  [ "$best" != main ] && cp "$(bin_of "$best")"/* "$root/bin/"
  PMPD_BUNDLE_ROOT=$root bash tools/gpu/run.sh "$out/run" >"$out/run.log" 2>&1
  echo "tools/gpu/run.sh with build $best: $out/run"
  grep -E "PASSED|FAILED" "$out/run/tests.txt"
fi
