#!/usr/bin/env bash
# stop 30 calls 5-7: sampling on the device -- the CUDA tests, then sampled decoding end to end
# (Vicuna-7B, 3 bits), greedy first for the baseline.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
timeout 200 "$N/pmpd_tests" --gtest_filter='*Cuda*:Sampler*' > /tmp/t.txt 2>&1; echo "tests rc=$?"
grep -E "FAILED|PASSED|Sample|Failure|device .* host" /tmp/t.txt | head -30
b() { echo "== $*"
  timeout 100 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "$@" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
b
b --temp 1
b --temp 1 --top-k 40
b --temp 1 --top-p 0.9
b --temp 0.7 --top-p 0.9 --top-k 40
