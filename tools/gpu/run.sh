#!/usr/bin/env bash
# On the GPU machine: unpacks .gpu/bundle.tar.xz (tools/gpu/pack.sh), runs the CUDA tests
# against the CPU reference, a CLI check, and `pmpd bench --backend cuda` for each model
# shape (then Vicuna-7B without graphs and at prompts of 32, 128, 512 and 1920 tokens); writes
# everything into OUTDIR (log.txt, tests.txt, bench.md, bench-SHAPE.json).
#   bash tools/gpu/run.sh OUTDIR [vicuna-7b mobilellama-1.4b phi-1.5 zephyr-3b]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: run.sh OUTDIR [SHAPES...]}
shift
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=(vicuna-7b mobilellama-1.4b phi-1.5 zephyr-3b)
mkdir -p "$out"
source tools/gpu/bundle_env.sh
PMPD="$root/bin/pmpd"
{
  echo "== machine"; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv; nproc
  echo "== CUDA tests"
  "$root/bin/pmpd_tests" --gtest_filter='*Cuda*' 2>&1 | tee "$out/tests.txt" | tail -40
  echo "== CLI: the default model quantized, then run on the GPU"
  "$PMPD" quantize -m models/pmpd-tiny -o /tmp/tiny.gguf 2>&1 | tail -1
  "$PMPD" run -m /tmp/tiny.gguf --backend cuda --schedule 4:2,3 -n 24 --no-color -p $'German: Zwei Hunde spielen im Schnee.\nEnglish:\n'
  PMPD_BITPLANE=exact "$PMPD" run -m /tmp/tiny.gguf --backend cpu --schedule 4:2,3 -n 24 --no-color -p $'German: Zwei Hunde spielen im Schnee.\nEnglish:\n'
  for shape in "${shapes[@]}"; do
    echo "== bench $shape"
    "$PMPD" bench --backend cuda --shape "$shape" --prompt-tokens 128 --json "$out/bench-$shape.json" | tee -a "$out/bench.md"
  done
} 2>&1 | tee "$out/log.txt"
[ "${PMPD_GPU_NO_GRAPH_RUN:-0}" = 1 ] && exit 0
{
  echo "== vicuna-7b end to end without CUDA graphs (launches from the host)"
  PMPD_CUDA_GRAPHS=0 "$PMPD" bench --backend cuda --shape vicuna-7b --no-ops --bits 3:4 --schedule ""
  # Prompt processing at four lengths (docs/cuda.md, "Prompt processing"); 32 tokens take the
  # tiled multi-token GEMM, the others dequantize and call cuBLAS.
  for p in 32 128 512 1920; do
    echo "== vicuna-7b, $p-token prompt"
    "$PMPD" bench --backend cuda --shape vicuna-7b --no-ops --bits 3:4 --schedule "" --prompt-tokens "$p" --new-tokens 32
  done
} 2>&1 | tee -a "$out/log.txt"
