#!/usr/bin/env bash
# stop 42 call 1 (H200): the staggered last round (stagger.diff; PMPD_CUDA_GEMV_STAGGER=1: half
# the warps of each streaming GEMV, two of each sub-partition's four, load their last item a
# round early) against the code (=0), in one binary: the CUDA tests under both, Vicuna-7B end to
# end at 3 and 2 bits interleaved, the per-operator rows at 3 bits; then
# the timeline build (the same code; streaming GEMV marks 11..14: warp 0's last two items in,
# the last busy warp's last item in and its loop's end; attention mark 10: thread 0's first
# cache row in) at 2..4 bits under each setting.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop42/scripts/lib.sh
t0=$(date +%s)
t stagger0 PMPD_CUDA_GEMV_STAGGER=0
t stagger1 PMPD_CUDA_GEMV_STAGGER=1
{
  for r in 1 2; do for v in 0 1; do b vicuna-7b 3 PMPD_CUDA_GEMV_STAGGER=$v; done; done
  for v in 0 1; do b vicuna-7b 2 PMPD_CUDA_GEMV_STAGGER=$v; done
  for v in 0 1; do
    echo "-- stagger $v per operator"
    PMPD_CUDA_GEMV_STAGGER=$v timeout 120 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --no-e2e 2>&1 | grep -E "^\| (3|16 \()"
  done
} 2>&1 | tee "$out/ab.txt"
echo "a/b done at $(( $(date +%s) - t0 )) s"
for s in 0 1; do
  PMPD_CUDA_GEMV_STAGGER=$s BITS=2:4 timeout 150 bash tools/gpu/timeline.sh "$out/timeline-s$s" >/dev/null 2>&1
  echo "== timeline, stagger $s: rc $?"
  grep -E "^\| |launches|Summed" "$out/timeline-s$s/timeline.md" | grep -vE "^\| [0-9]+ \| attention|^\|---|^\| role" | head -40
  grep -E "^\| [2-4]-bit" "$out/timeline-s$s/bench.md"
done
echo "total $(( $(date +%s) - t0 )) s"
