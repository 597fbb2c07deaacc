#!/usr/bin/env bash
# stop 50 call 2 (H200): the decode attention's split count and block size at long contexts
# re-swept on today's kernel (stop 20 chose 16 splits of 128 threads from 1792 positions on,
# before the batched loads and the cluster merge), decode tokens/s of `pmpd bench --backend cuda
# --shape vicuna-7b --bits 3:3 --prompt-tokens P --new-tokens 64 --no-ops --schedule ""` with the
# f32 prompt attention (PMPD_CUDA_PREFILL_MMA=0: call 1 saw the tensor cores' prompt leave the
# decode after it ~5% slower, with the SM clock capped), PMPD_CUDA_ATTN_SPLITS / _THREADS set;
# nvidia-smi's power and clock report first, and its clock log throughout; then the bench's
# step profile (stages cut by timing events) at 128, 1000, 1920 and 3968 positions. Main bundle = call 1's.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source tools/gpu/bundle_env.sh   # root: the unpacked main bundle, its libraries on the path
N=$root/bin
t0=$(date +%s)
nvidia-smi -q -d POWER,CLOCK,PERFORMANCE > "$out/smi-q.txt" 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active --format=csv -lms 50 > "$out/smi.csv" 2>&1 &
smi=$!
dp() { local p=$1 label=$2; shift 2; echo "== prompt $p, $label"; echo "$(date +%H:%M:%S.%N | cut -c1-12) $p $label" >> "$out/marks.txt"
  env PMPD_CUDA_PREFILL_MMA=0 "$@" timeout 100 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens "$p" \
    --new-tokens 64 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|3)-bit|rror"; }
cfgs=("default" "t256 PMPD_CUDA_ATTN_THREADS=256" "s8 PMPD_CUDA_ATTN_SPLITS=8" "s8t256 PMPD_CUDA_ATTN_SPLITS=8 PMPD_CUDA_ATTN_THREADS=256"
      "s12 PMPD_CUDA_ATTN_SPLITS=12")
{
  for round in 1 2; do
    for c in "${cfgs[@]}"; do
      [ $(( $(date +%s) - t0 )) -gt 300 ] && { echo "skipped $c (time)"; continue; }
      dp 1920 $c
    done
  done
  for c in "${cfgs[@]:0:3}"; do
    [ $(( $(date +%s) - t0 )) -gt 400 ] && { echo "skipped $c (time)"; continue; }
    dp 3968 $c
  done
} 2>&1 | tee "$out/sweep.txt"
# Where a step goes at each context (the bench's step profile: stages cut by timing events).
for p in 128 1000 1920 3968; do
  [ $(( $(date +%s) - t0 )) -gt 500 ] && { echo "skipped profile $p (time)"; continue; }
  echo "== step profile, prompt $p" | tee -a "$out/profile.txt"
  timeout 60 "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens "$p" --new-tokens 64 --no-e2e \
    2>&1 | grep -E "^\| (stage|[a-zA-Z])" | tee -a "$out/profile.txt"
done
kill $smi
echo "total $(( $(date +%s) - t0 )) s"
