#!/usr/bin/env bash
# On the GPU machine: an Nsight Systems trace of decode steps, summarized per kernel
# (tools/gpu/timeline.py: each kernel's mean duration and its spacing from the kernel
# before, within CUDA graphs). One trace per setting, as in sweep.sh:
#   [SHAPE=vicuna-7b] [BITS=3:3] bash tools/gpu/timeline.sh OUTDIR default "PMPD_CUDA_GEMV_STREAM=0"
# Writes OUTDIR/timeline.md and OUTDIR/trace-N.csv.xz (the GPU trace of setting N).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: timeline.sh OUTDIR SETTING...}
shift
mkdir -p "$out"
source tools/gpu/bundle_env.sh
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
[ -n "$nsys" ] || { echo "timeline.sh: no nsys on this machine" >&2; exit 1; }
tmp=$(mktemp -d)
n=0
for setting in "$@"; do
  n=$((n + 1))
  vars=()
  [ "$setting" != default ] && read -ra vars <<<"$setting"
  echo "# setting $n: $setting (${SHAPE:-vicuna-7b}, bits ${BITS:-3:3})" >>"$out/timeline.md"
  env "${vars[@]}" "$nsys" profile --cuda-graph-trace=node -t cuda -o "$tmp/t$n" --force-overwrite true \
    "$root/bin/pmpd" bench --backend cuda --shape "${SHAPE:-vicuna-7b}" --bits "${BITS:-3:3}" --no-ops --schedule "" \
    --new-tokens 16 --prompt-tokens 128 >"$tmp/bench-$n.txt" 2>&1 || { tail -5 "$tmp/bench-$n.txt"; continue; }
  grep -E "^\| [0-9]+-bit" "$tmp/bench-$n.txt" >>"$out/timeline.md"
  "$nsys" stats --report cuda_gpu_trace --format csv --output "$tmp/t$n" "$tmp/t$n.nsys-rep" >/dev/null 2>&1
  csv=$(ls "$tmp"/t"$n"*cuda_gpu_trace*.csv | head -1)
  python3 tools/gpu/timeline.py "$csv" >>"$out/timeline.md"
  xz -c "$csv" >"$out/trace-$n.csv.xz"
done
rm -rf "$tmp"
cat "$out/timeline.md"
