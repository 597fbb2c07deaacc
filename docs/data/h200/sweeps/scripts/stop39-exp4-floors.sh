#!/usr/bin/env bash
# stop 39 call 4: the two floors docs/cuda.md's "What the targets need" rests on,
# re-measured on this stop's code: what a dependent kernel (and a grid barrier) costs
# (--sync-costs) and the GEMV's ceilings at 2..4 bits (--gemv-ceiling).
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 200 "$N/pmpd" bench --backend cuda --sync-costs 2>&1 | tee "$out/sync-costs.md"
timeout 250 "$N/pmpd" bench --backend cuda --gemv-ceiling --bits 2:4 2>&1 | tee "$out/gemv-ceiling.md"
