#!/usr/bin/env bash
# stop 39 call 2: the per-operator tables at 5..8 bits with the wide rolling GEMV and without
# (PMPD_CUDA_GEMV_ROLL=0, the task loop), Vicuna-7B; then the 7-bit end-to-end pair call 1 lost.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
for v in 1 0; do
  PMPD_CUDA_GEMV_ROLL=$v timeout 240 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 5:8 --no-e2e \
    >"$out/ops-roll$v.md" 2>&1
  echo "== per-operator, PMPD_CUDA_GEMV_ROLL=$v"; grep -E "^\| [0-9]|16 \(" "$out/ops-roll$v.md"
done
{ b vicuna-7b 7; b vicuna-7b 7 PMPD_CUDA_GEMV_ROLL=0; } 2>&1 | tee "$out/e2e.txt"
