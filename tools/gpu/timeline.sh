#!/usr/bin/env bash
# On the GPU machine: where a decode step's time goes, block by block. Runs the timeline
# build (pack it here with `PMPD_PACK_ONLY_PMPD=1 PMPD_PACK_CMAKE=-DPMPD_CUDA_TIMELINE=ON bash tools/gpu/pack.sh
# timeline`; its libraries come from the main bundle) on a synthetic shape: the 16th decode
# step of each width is recorded (kernels/cuda/timeline.cuh) into OUTDIR/tl-b<bits>.csv and
# summarized by timeline.py into OUTDIR/timeline.md.
# KEEP_CSV=0 deletes the CSVs once summarized (the device tool brings back only so many files:
# two timelines' CSVs in one call did not all come back, stop 42).
#   [SHAPE=vicuna-7b] [BITS=2:4] [VARIANT=timeline] [KEEP_CSV=1] bash tools/gpu/timeline.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: timeline.sh OUTDIR}
mkdir -p "$out"
source tools/gpu/bundle_env.sh
variant=${VARIANT:-timeline}
mkdir -p "$root/$variant" && tar -C "$root/$variant" -xJf ".gpu/$variant.tar.xz" || exit 1
PMPD_CUDA_TIMELINE_OUT="$out/tl" PMPD_CUDA_TIMELINE_STEP=16 "$root/$variant/bin/pmpd" bench --backend cuda \
  --shape "${SHAPE:-vicuna-7b}" --bits "${BITS:-2:4}" --no-ops --schedule "" --new-tokens 32 --prompt-tokens 128 \
  >"$out/bench.md" 2>&1
python3 tools/gpu/timeline.py "$out"/tl-b*.csv | tee "$out/timeline.md"
if [ "${KEEP_CSV:-1}" = 0 ]; then rm -f "$out"/tl-b*.csv; else xz -f "$out"/tl-b*.csv; fi
