#!/usr/bin/env bash
# stop 31 call 2: the sampling kernel's draw target taken from its first digit's bins (one
# exchange and pass fewer), and sampled steps queued ahead of the host. Main bundle: both;
# variant `noahead` (PMPD_PACK_ONLY_PMPD=1 bash tools/gpu/pack.sh noahead): the same code with
# sampled steps not queued ahead. The CUDA and sampler tests (the sampling tests again with the
# row on 1 and 16 blocks), then Vicuna-7B 3 bits end to end, the two builds interleaved, twice.
set -uo pipefail
source tools/gpu/bundle_env.sh
N=$root/bin
mkdir -p "$root/noahead" && tar -C "$root/noahead" -xJf .gpu/noahead.tar.xz
timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*:Sampler*' > "$OUT/tests.txt" 2>&1; echo "tests rc=$?"
grep -E "FAILED|PASSED|Failure|device .* host" "$OUT/tests.txt" | head -30
for c in 1 16; do
  echo "== sampling tests, PMPD_CUDA_SAMPLE_CLUSTER=$c"
  PMPD_CUDA_SAMPLE_CLUSTER=$c timeout 120 "$N/pmpd_tests" --gtest_filter='Cuda.Sample*' 2>&1 | grep -E "FAILED|PASSED|Failure|device .* host" | head -8
done
b() { echo "== $1 ${*:2}"
  timeout 100 "$2" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens 128 --no-ops --schedule "" "${@:3}" 2>&1 | grep -E "^\| [0-9]+-bit|rror"; }
for rep in 1 2; do
  b main "$N/pmpd"
  for s in "--temp 1" "--temp 1 --top-p 0.9" "--temp 1 --top-k 40"; do
    # shellcheck disable=SC2086
    b main "$N/pmpd" $s; b noahead "$root/noahead/bin/pmpd" $s
  done
done
