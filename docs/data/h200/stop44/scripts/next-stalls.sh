#!/usr/bin/env bash
# Prepared in stop 44, not run: where the 3-bit gate|up streaming GEMV's warps stall, per SASS
# instruction (Nsight Compute's PC sampling), on the main bundle. Call 2 found it latency-bound
# (issue slots 40% busy, 1.1 eligible warps of 4 a scheduler) without saying on what.
#  - stalls.txt: the details page with every section's body (the warp states' stall reasons)
#  - source.csv: the source page, SASS with each instruction's samples by stall reason
#  - gateup3.ncu-rep: the report itself (open it where an Nsight Compute is)
# The launch: call 2's order (q|k|v, o, gate|up, down, ...) after 260 streaming launches, so
# skipping 262 lands on a gate|up GEMV of a Vicuna-7B decode step.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # N = the main bundle's bin
t0=$(date +%s)
timeout 300 ncu --clock-control none --set full --import-source no --kernel-name regex:'pair_lut_stream_kernel' \
  --launch-skip 262 --launch-count 1 -o "$out/gateup3" \
  "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" \
  >"$out/ncu-log.txt" 2>&1
echo "ncu: rc $?, $(( $(date +%s) - t0 )) s"
ncu --import "$out/gateup3.ncu-rep" --page details --print-details all >"$out/stalls.txt" 2>&1
echo "details: rc $?"
ncu --import "$out/gateup3.ncu-rep" --page source --print-source sass --csv >"$out/source.csv" 2>&1
echo "source: rc $?"
grep -iE "stall|Duration|pair_lut" "$out/stalls.txt" | head -60
ls -la "$out"
