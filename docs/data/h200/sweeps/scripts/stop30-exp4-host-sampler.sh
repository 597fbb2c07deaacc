#!/usr/bin/env bash
# stop 30 call 4: sampled decoding end to end on the GPU (the sampler on the host): the
# selecting Sampler (main bundle) against the sorting one it replaced (oldsampler).
set -uo pipefail
source tools/gpu/bundle_env.sh
mkdir -p "$root/old" && tar -C "$root/old" -xJf .gpu/oldsampler.tar.xz
O=$root/old/bin N=$root/bin
b() { local bin=$1; shift; echo "== $(basename "$(dirname "$bin")") $*"
  timeout 100 "$bin/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "$@" 2>&1 | grep -E "^\| [0-9]+-bit|^## End|rror"; }
b $N
b $O --temp 1
b $N --temp 1
b $O --temp 1 --top-k 40
b $N --temp 1 --top-k 40
b $N --temp 1 --top-p 0.9
