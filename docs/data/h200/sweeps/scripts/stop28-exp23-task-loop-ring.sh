#!/usr/bin/env bash
# stop 28, exp 3: task-loop ring without copies (ring) against the kept code (main), then
# run.sh tables on the kept code
set -uo pipefail
source tools/gpu/bundle_env.sh
mkdir -p "$root/ring" && tar -C "$root/ring" -xJf .gpu/ring.tar.xz
R=$root/ring/bin M=$root/bin
timeout 120 "$R/pmpd_tests" --gtest_filter='*Cuda*' >"$OUT/tests-ring.txt" 2>&1
echo "ring tests rc=$?"; grep -E "PASSED|FAILED" "$OUT/tests-ring.txt" | tail -5
b() {  # bin shape bits
  echo "== $(basename "$(dirname "$1")") $2 $3"
  timeout 90 "$1/pmpd" bench --backend cuda --shape "$2" --bits "$3" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"
}
for bits in 3:3 2:2; do b $M vicuna-7b $bits; b $R vicuna-7b $bits; b $M vicuna-7b $bits; b $R vicuna-7b $bits; done
b $M vicuna-7b 8:8; b $R vicuna-7b 8:8
b $M vicuna-7b 4:4; b $R vicuna-7b 4:4
b $M phi-1.5 3:3; b $R phi-1.5 3:3
PMPD_BUNDLE_ROOT=$root PMPD_GPU_NO_GRAPH_RUN=1 bash tools/gpu/run.sh "$OUT/run" > /tmp/run.log 2>&1
echo "run rc=$?"; grep -E "PASSED|FAILED" "$OUT/run/tests.txt" | tail -3
