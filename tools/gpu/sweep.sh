#!/usr/bin/env bash
# On the GPU machine: `pmpd bench --backend cuda` of one shape under several settings of
# the kernels' environment switches, to compare kernel variants in one run (same device,
# same clocks). Each setting is a space-separated list of VAR=VALUE (or "default").
#   bash tools/gpu/sweep.sh OUTDIR SHAPE BITS "PMPD_CUDA_PDL=0 PMPD_CUDA_PREFETCH=0" default ...
# Writes OUTDIR/sweep.md (the bench tables under a heading per setting) and one JSON each.
# BENCH_ARGS adds options to every bench (default: --prompt-tokens 128).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: sweep.sh OUTDIR SHAPE BITS SETTING...}
shape=${2:?shape}
bits=${3:?bits, e.g. 2:4}
shift 3
mkdir -p "$out"
source tools/gpu/bundle_env.sh
n=0
for setting in "$@"; do
  n=$((n + 1))
  vars=()
  [ "$setting" != default ] && read -ra vars <<<"$setting"
  echo "## setting $n: $setting" | tee -a "$out/sweep.md"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
  env "${vars[@]}" "$root/bin/pmpd" bench --backend cuda --shape "$shape" --bits "$bits" ${BENCH_ARGS:---prompt-tokens 128} \
    --json "$out/sweep-$n.json" 2>&1 | tee -a "$out/sweep.md"
done
