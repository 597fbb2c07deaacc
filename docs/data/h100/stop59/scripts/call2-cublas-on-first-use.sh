#!/usr/bin/env bash
# Stop 59, call 2 (H100 or H200, carry .gpu; main bundle from `bash tools/gpu/pack.sh` with
# cuBLAS opened on first use, src/model/cublas_loader.h; models/pmpd-small moved aside):
#  1. tools/gpu/quick.sh: the CUDA tests (cuBLAS now reached through dlopen: the 16-bit
#     paths and the prompt's dequantize + cuBLAS GEMM) and a Vicuna-7B bench at 3..4 bits;
#  2. the CLI check of run.sh (the same tokens from --backend cuda and cpu);
#  3. where the loader finds cuBLAS without bundle_env.sh's LD_LIBRARY_PATH entry for it, and
#     what a user sees where it does not (a one-line error, not a crash).
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out/call2"
SHAPE=vicuna-7b BITS=3:4 timeout 400 bash tools/gpu/quick.sh "$out/call2"
source tools/gpu/bundle_env.sh
P=$root/bin/pmpd
{
  "$P" quantize -m models/pmpd-tiny -o /tmp/tiny.gguf 2>&1 | tail -1
  "$P" run -m /tmp/tiny.gguf --backend cuda --schedule 4:2,3 -n 24 --no-color -p $'German: Zwei Hunde spielen im Schnee.\nEnglish:\n'
  "$P" run -m /tmp/tiny.gguf --backend cpu --schedule 4:2,3 -n 24 --no-color -p $'German: Zwei Hunde spielen im Schnee.\nEnglish:\n'
  echo "== cuBLAS at $cuda_lib; now without it on LD_LIBRARY_PATH:"
  LD_LIBRARY_PATH="$root/lib" "$P" run -m /tmp/tiny.gguf --backend cuda -n 8 --no-color -p "German: Ein Mann." ; echo "exit $?"
  echo "== and with no cuBLAS to find (LD_LIBRARY_PATH and the build's folder both without it):"
  LD_LIBRARY_PATH="$root/lib" "$root/bin/pmpd_tests" --gtest_filter='Cuda.CublasIsOpened*' 2>&1 | tail -3
  echo "== start-up, --help: $( { /usr/bin/time -f '%e s %M KB' "$P" --help >/dev/null; } 2>&1 )"
} 2>&1 | tee "$out/call2/cli.txt"
