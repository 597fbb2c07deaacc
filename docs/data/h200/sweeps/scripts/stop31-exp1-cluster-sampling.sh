#!/usr/bin/env bash
# stop 31 call 1: the sampling kernel's row split over a cluster -- the CUDA and sampler tests
# (the sampling tests again with the row on 1, 2, 4 and 16 blocks), then sampled decoding end
# to end (Vicuna-7B, 3 bits) with the row on 1 block (the split's baseline), 8 (the default)
# and 16, twice over, greedy first.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*:Sampler*' > "$OUT/tests.txt" 2>&1; echo "tests rc=$?"
grep -E "FAILED|PASSED|Failure|device .* host" "$OUT/tests.txt" | head -30
for c in 1 2 4 16; do
  echo "== sampling tests, PMPD_CUDA_SAMPLE_CLUSTER=$c"
  PMPD_CUDA_SAMPLE_CLUSTER=$c timeout 120 "$N/pmpd_tests" --gtest_filter='Cuda.Sample*' 2>&1 | grep -E "FAILED|PASSED|Failure|device .* host" | head -8
done
b() { echo "== PMPD_CUDA_SAMPLE_CLUSTER=$1 ${*:2}"
  PMPD_CUDA_SAMPLE_CLUSTER=$1 timeout 100 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "${@:2}" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for rep in 1 2; do
  b 8
  for c in 1 8 16; do b $c --temp 1; done
  for c in 1 8; do b $c --temp 1 --top-p 0.9; b $c --temp 1 --top-k 40; done
done
