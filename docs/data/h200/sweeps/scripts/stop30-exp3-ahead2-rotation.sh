#!/usr/bin/env bash
# stop 30 call 3: two items in flight a warp in the streaming GEMV with the three item buffers
# taking turns (no ring copies), PMPD_CUDA_GEMV_STREAM_AHEAD=2 against the default one.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
echo "== tests ahead=2"; PMPD_CUDA_GEMV_STREAM_AHEAD=2 timeout 120 "$N/pmpd_tests" --gtest_filter='*Cuda*' 2>&1 | grep -E "FAILED|PASSED" | tail -4
b() { local a=$1 sh=$2 bits=$3; echo "== ahead=$a $sh $bits"
  PMPD_CUDA_GEMV_STREAM_AHEAD=$a timeout 80 "$N/pmpd" bench --backend cuda --shape "$sh" --bits "$bits" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for r in 1 2; do for a in 1 2; do b $a vicuna-7b 3:3; done; done
for a in 1 2; do b $a vicuna-7b 2:2; done
for a in 1 2; do b $a zephyr-3b 3:3; done
for a in 1 2; do b $a phi-1.5 3:3; done
