#!/usr/bin/env bash
# stop 30 call 1: the streaming GEMV's first item with its table look-ups before its first mma
# (PMPD_CUDA_GEMV_EARLY_LOOKUPS=1: one half, 2: both), tests then Vicuna-7B side by side.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
for e in 1 2; do echo "== tests early=$e"; PMPD_CUDA_GEMV_EARLY_LOOKUPS=$e timeout 120 "$N/pmpd_tests" --gtest_filter='*Cuda*' 2>&1 | grep -E "FAILED|PASSED" | tail -4; done
b() { local e=$1 sh=$2 bits=$3; echo "== early=$e $sh $bits"
  PMPD_CUDA_GEMV_EARLY_LOOKUPS=$e timeout 80 "$N/pmpd" bench --backend cuda --shape "$sh" --bits "$bits" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for r in 1 2; do for e in 0 1 2; do b $e vicuna-7b 3:3; done; done
for e in 0 1 2; do b $e vicuna-7b 2:2; done
