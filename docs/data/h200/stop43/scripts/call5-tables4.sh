#!/usr/bin/env bash
# stop 43 call 5 (H200, the session's last ~280 s of device time): the streaming GEMV's tables
# built 16 bytes a store (variant "tables4", .gpu/tables4.tar.xz: both binaries) against the
# main bundle (cf61804), in one call: the variant's CUDA tests, then Vicuna-7B at 3 bits (two
# pairs, interleaved) and Zephyr-3B at 3 bits (one pair); each row written to $OUT as it comes.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # b, t, with_variant; main = the main bundle's bin
with_variant tables4 || exit 1
t0=$(date +%s)
N=$var t tables4
for r in 1 2; do for arm in main var; do N=${!arm}; echo "[$arm]"; b vicuna-7b 3; done; done 2>&1 | tee "$out/ab.txt"
for arm in main var; do N=${!arm}; echo "[$arm]"; b zephyr-3b 3; done 2>&1 | tee -a "$out/ab.txt"
echo "total $(( $(date +%s) - t0 )) s"
