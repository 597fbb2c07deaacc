#!/usr/bin/env bash
# stop 30 call 9: sampled steps queued ahead of the host (no repetition penalty) -- CUDA
# tests, then Vicuna-7B 3 bits greedy / temperature 1 / top-p 0.9.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
timeout 60 "$N/pmpd_tests" --gtest_filter='*Cuda*:Sampler*' > /tmp/t.txt 2>&1; echo "tests rc=$?"
grep -E "FAILED|PASSED|Failure" /tmp/t.txt | head -10
b() { echo "== $*"
  timeout 50 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "$@" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
b
b --temp 1
b --temp 1 --top-p 0.9
