#!/usr/bin/env bash
# stop 29 call 1: main vs L with defaults (= direct x) vs stop29-late-tables (L, PMPD_CUDA_GEMV_TABLES_EARLY=N); sync-costs.
set -uo pipefail
source tools/gpu/bundle_env.sh
for v in late; do mkdir -p "$root/$v" && tar -C "$root/$v" -xJf .gpu/$v.tar.xz; done
L=$root/late/bin M=$root/bin
F='*Cuda*:-Cuda.TiledGemmMatchesCpuAtEveryWidth'
timeout 100 "$L/pmpd_tests" --gtest_filter="$F" >"$OUT/tests-late-default.txt" 2>&1; echo "late default tests rc=$?"
PMPD_CUDA_GEMV_TABLES_EARLY=1 timeout 100 "$L/pmpd_tests" --gtest_filter="$F" >"$OUT/tests-late1.txt" 2>&1; echo "late1 tests rc=$?"
grep -E "FAILED" "$OUT"/tests-*.txt | head
b() { local bin=$1; shift; local sh=$1 bits=$2; shift 2
  echo "== $(basename "$(dirname "$bin")") $sh $bits $*"
  env "$@" timeout 90 "$bin/pmpd" bench --backend cuda --shape "$sh" --bits "$bits" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for rep in 1 2; do
  b $M vicuna-7b 3:3; b $L vicuna-7b 3:3; b $L vicuna-7b 3:3 PMPD_CUDA_GEMV_TABLES_EARLY=1; b $L vicuna-7b 3:3 PMPD_CUDA_GEMV_TABLES_EARLY=2
done
b $M vicuna-7b 2:2; b $L vicuna-7b 2:2; b $L vicuna-7b 2:2 PMPD_CUDA_GEMV_TABLES_EARLY=1
b $M zephyr-3b 3:3; b $L zephyr-3b 3:3; b $L zephyr-3b 3:3 PMPD_CUDA_GEMV_TABLES_EARLY=1
b $M phi-1.5 3:3; b $L phi-1.5 3:3; b $L phi-1.5 3:3 PMPD_CUDA_GEMV_TABLES_EARLY=1
echo "== sync-costs"; timeout 60 $M/pmpd bench --backend cuda --sync-costs 2>&1 | tail -15
