#!/usr/bin/env bash
# stop 35 call 1: the plain streaming GEMV (q|k|v, o) held to 96 or 88 registers and the
# decode attention to 64 or 72 (two positions a batch), so that one attention block fits
# beside a q|k|v block (and an o block beside an attention block) and starts while it streams
# (PMPD_CUDA_COLOC=96 / 88; 0 is the code before, PTX-identical to HEAD's kernels). The CUDA
# tests at each setting, then end to end interleaved: Vicuna-7B 3 bits (three rounds) and 2
# bits (two), the other shapes at 3 bits once.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
for c in 0 96 88; do
  echo "== tests PMPD_CUDA_COLOC=$c"
  PMPD_CUDA_COLOC=$c timeout 120 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests-coloc$c.txt" 2>&1
  grep -E "PASSED|FAILED" "$out/tests-coloc$c.txt"
done
c3() { for c in 0 96 88; do b "$@" PMPD_CUDA_COLOC=$c; done; }
for _ in 1 2 3; do c3 vicuna-7b 3; done
for _ in 1 2; do c3 vicuna-7b 2; done
# shellcheck disable=SC2086  # $s is "SHAPE BITS", split on purpose
for s in "zephyr-3b 3" "mobilellama-1.4b 3" "phi-1.5 3"; do c3 $s; done
