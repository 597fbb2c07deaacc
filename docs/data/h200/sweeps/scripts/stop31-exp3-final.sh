#!/usr/bin/env bash
# stop 31 call 3 (final code): every CUDA test, the sampling tests with the row on 1 and 16
# blocks, the CLI check of tools/gpu/run.sh, then greedy and temperature-1 decoding at 3 bits on
# the four shapes (128-token prompt, 128 new tokens), twice.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*:Sampler*' > "$OUT/tests.txt" 2>&1; echo "tests rc=$?"
grep -E "FAILED|PASSED|Failure|device .* host" "$OUT/tests.txt" | head -30
for c in 1 16; do
  echo "== sampling tests, PMPD_CUDA_SAMPLE_CLUSTER=$c"
  PMPD_CUDA_SAMPLE_CLUSTER=$c timeout 120 "$N/pmpd_tests" --gtest_filter='Cuda.Sample*' 2>&1 | grep -E "FAILED|PASSED|Failure|device .* host" | head -8
done
echo "== CLI: the default model quantized, then sampled on the GPU and on the CPU (seed 7)"
"$N/pmpd" quantize -m models/pmpd-tiny -o /tmp/tiny.gguf 2>&1 | tail -1
for be in cuda cpu; do
  "$N/pmpd" run -m /tmp/tiny.gguf --backend $be --schedule 4:2,3 -n 24 --temp 0.8 --seed 7 --no-color -p $'German: Zwei Hunde spielen im Schnee.\nEnglish:\n' 2>&1 | tail -3
done
b() { echo "== $1 ${*:2}"
  timeout 100 "$N/pmpd" bench --backend cuda --shape "$1" --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "${@:2}" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for rep in 1 2; do
  for shape in vicuna-7b mobilellama-1.4b phi-1.5 zephyr-3b; do b $shape; b $shape --temp 1; done
done
