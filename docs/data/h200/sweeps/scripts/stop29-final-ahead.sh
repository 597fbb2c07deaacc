#!/usr/bin/env bash
# stop 29 call 6: the host one step behind the GPU (main bundle) -- run.sh tables and tests, then against the build before it ("before").
set -uo pipefail
PMPD_GPU_NO_GRAPH_RUN=1 timeout 330 bash tools/gpu/run.sh "$OUT/run" > /dev/null 2>&1; echo "run.sh rc=$?"
grep -E "PASSED|FAILED|Queued" "$OUT/run/tests.txt" | tail -4
grep -E "^# pmpd bench|^\| (16|3|2)-bit|^\| PMPD" "$OUT/run/bench.md" | head -40
source tools/gpu/bundle_env.sh
mkdir -p "$root/before" && tar -C "$root/before" -xJf .gpu/before.tar.xz
B=$root/before/bin N=$root/bin
b() { local bin=$1 sh=$2 bits=$3; echo "== $(basename "$(dirname "$bin")") $sh $bits"
  timeout 80 "$bin/pmpd" bench --backend cuda --shape "$sh" --bits "$bits" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
b $B vicuna-7b 3:3; b $N vicuna-7b 3:3
b $B mobilellama-1.4b 3:3; b $N mobilellama-1.4b 3:3
b $B phi-1.5 3:3; b $N phi-1.5 3:3
b $B vicuna-7b 3:3; b $N vicuna-7b 3:3
