#!/usr/bin/env bash
# stop 29 call 8: CUDA tests of the final code (t29b), and calibrate on the GPU before (main bundle) / after (t29b: branches with the host one step behind).
set -uo pipefail
source tools/gpu/bundle_env.sh
mkdir -p "$root/t" && tar -C "$root/t" -xJf .gpu/t29b.tar.xz
T=$root/t/bin M=$root/bin
timeout 100 "$T/pmpd_tests" --gtest_filter='*Cuda*' 2>&1 | grep -E "FAILED|PASSED|Branched|Queued" | tail -6
"$M/pmpd" quantize -m models/pmpd-tiny -o /tmp/tiny.gguf > /dev/null 2>&1
for bin in $M $T $M $T; do
  s=$(date +%s.%N)
  timeout 60 "$bin/pmpd" calibrate -m /tmp/tiny.gguf --task tasks/multi30k-de-en.json --data .gpu/cal.jsonl -o /tmp/s.json --limit 16 --bits 2:4 --backend cuda > /tmp/cal.txt 2>&1
  rc=$?; e=$(date +%s.%N)
  echo "== $(basename "$(dirname "$bin")") calibrate rc=$rc $(echo "$e - $s" | bc) s"; rm -f /tmp/s.json /tmp/s.json.journal
done
tail -3 /tmp/cal.txt
