#!/usr/bin/env bash
# stop 29 call 5: the centroids' copies with an L2 evict-last hint (variant "keep", -DPMPD_CUDA_CENTROIDS_KEEP) against main.
set -uo pipefail
source tools/gpu/bundle_env.sh
mkdir -p "$root/keep" && tar -C "$root/keep" -xJf .gpu/keep.tar.xz
K=$root/keep/bin M=$root/bin
b() { local bin=$1 sh=$2 bits=$3; echo "== $(basename "$(dirname "$bin")") $sh $bits"
  timeout 90 "$bin/pmpd" bench --backend cuda --shape "$sh" --bits "$bits" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for rep in 1 2; do b $M vicuna-7b 2:3; b $K vicuna-7b 2:3; done
b $M zephyr-3b 3:3; b $K zephyr-3b 3:3
b $M phi-1.5 3:3; b $K phi-1.5 3:3
b $M mobilellama-1.4b 3:3; b $K mobilellama-1.4b 3:3
