#!/usr/bin/env bash
# stop 48 call 4 (H200): the stop's final code (main bundle, 3ff7731's tree): tools/gpu/run.sh
# without its no-graph and prompt-length runs: the CUDA tests, the CLI check, and the full
# `pmpd bench --backend cuda --shape S --prompt-tokens 128` (widths 2..8, the 16-bit head) of
# the four shapes, into $OUT/call4.
PMPD_GPU_NO_GRAPH_RUN=1 timeout 500 bash tools/gpu/run.sh "${OUT:-/tmp/out}/call4"
