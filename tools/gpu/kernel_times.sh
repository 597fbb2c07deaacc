#!/usr/bin/env bash
# On the GPU machine: every kernel of a few decode steps timed alone by Nsight Compute (each
# kernel replayed by itself with L2 flushed, so weights come from device memory, at the
# device's own clocks), summarized per kernel and place in the layer (kernel_times.py).
# The sum of a step's kernels against the step's real time (bench) is what chaining the
# kernels hides; each kernel's time against its bytes is its own rate.
#   [SHAPE=vicuna-7b] [BITS=3:3] [SKIP=200] [COUNT=1400] bash tools/gpu/kernel_times.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: kernel_times.sh OUTDIR}
mkdir -p "$out"
source tools/gpu/bundle_env.sh
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
# The 16-bit steps' cuBLAS kernels and conversions are left out by name; SKIP passes the
# 16-bit run's attention kernels and the prompt pass.
"$ncu" --graph-profiling node --clock-control none --cache-control all \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum \
  --kernel-name regex:'pair_lut|attention_decode|embed_kernel|argmax|rmsnorm|rope' \
  --launch-skip "${SKIP:-200}" --launch-count "${COUNT:-1400}" --csv --page raw \
  "$root/bin/pmpd" bench --backend cuda --shape "${SHAPE:-vicuna-7b}" --bits "${BITS:-3:3}" --no-ops --schedule "" \
  --new-tokens 8 --prompt-tokens 32 >"$out/ncu.csv" 2>"$out/ncu.err"
python3 tools/gpu/kernel_times.py "$out/ncu.csv" | tee "$out/kernel_times.md"
xz -f "$out/ncu.csv"
