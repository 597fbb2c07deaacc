#!/usr/bin/env bash
# stop 34 call 4: the decode attention's merge with each split's weight computed once a warp
# (lane j: split j's exponential and division, broadcast) instead of by every merging thread,
# and the block's sum of exponentials added from the teams' sums after the barrier that
# publishes their rows (one block reduction fewer). The CUDA tests and Vicuna-7B's bench on the
# new code (tools/gpu/quick.sh); then end to end, the new build against 10794f2's attention
# (.gpu/head.tar.xz) interleaved: Vicuna-7B 3 and 2 bits (cluster merge of 4 splits),
# MobileLLaMA-1.4B (8 splits), Zephyr-3B (heads of 80), Phi-1.5 (heads of 64: one block a
# head, no merge; the team sums only).
set -uo pipefail
out=${OUT:-/tmp/out}
SHAPE=vicuna-7b BITS=2:4 bash tools/gpu/quick.sh "$out"
source docs/data/h200/sweeps/scripts/stop34-lib.sh
for _ in 1 2 3; do ab vicuna-7b 3; done
# shellcheck disable=SC2086  # $s is "SHAPE BITS", split on purpose
for s in "vicuna-7b 2" "mobilellama-1.4b 3" "zephyr-3b 3" "phi-1.5 3"; do
  for _ in 1 2; do ab $s; done
done
