#!/usr/bin/env bash
# stop 43 call 3 (H200): the column slices' meeting with the other slices' sums asked for
# with the count (variant "slicespec", .gpu/slicespec.tar.xz: both binaries) against the main
# bundle (the code before: stop 43's row sums, cf61804), in one call: the CUDA tests of each
# build, Vicuna-7B end to end at 3 bits (three pairs, interleaved; the down projections run
# sliced there), Zephyr-3B at 3 bits (one pair), the per-operator rows at 3 bits; then the
# timeline build of the variant (.gpu/timeline.tar.xz) at 2..4 bits.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant, per_operator; main = the main bundle's bin
with_variant slicespec || exit 1
t0=$(date +%s)
N=$main t main
N=$var t slicespec
{
  for r in 1 2 3; do for arm in main var; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done
  for arm in main var; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done
  per_operator main var
} 2>&1 | tee "$out/ab.txt"
echo "a/b done at $(( $(date +%s) - t0 )) s"
if [ -f .gpu/timeline.tar.xz ]; then
  KEEP_CSV=0 BITS=2:4 timeout 150 bash tools/gpu/timeline.sh "$out/timeline" >/dev/null 2>&1   # the summary only
  echo "== timeline: rc $?"
  grep -E "\| (stream|taskloop|attention) \| [0-9]+ \|" "$out/timeline/timeline.md" | grep -vE "^\| [0-9]+ \|" | cut -c1-400
  grep -E "^\| [2-4]-bit" "$out/timeline/bench.md"
fi
echo "total $(( $(date +%s) - t0 )) s"
