#!/usr/bin/env bash
# stop 28, exp 2: streaming GEMV item loop in ping-pong registers (v28) and the attention's
# one-barrier push merge (v28 + PMPD_CUDA_ATTN_PUSH=1) against the code (main)
set -uo pipefail
source tools/gpu/bundle_env.sh
mkdir -p "$root/v28" && tar -C "$root/v28" -xJf .gpu/v28.tar.xz
V=$root/v28/bin M=$root/bin
timeout 120 "$V/pmpd_tests" --gtest_filter='*Cuda*' >"$OUT/tests-v28.txt" 2>&1
echo "v28 tests rc=$?"; grep -E "PASSED|FAILED" "$OUT/tests-v28.txt" | tail -5
PMPD_CUDA_ATTN_PUSH=1 timeout 120 "$V/pmpd_tests" --gtest_filter='*Cuda*' >"$OUT/tests-v28-push.txt" 2>&1
echo "v28 push tests rc=$?"; grep -E "PASSED|FAILED" "$OUT/tests-v28-push.txt" | tail -5
b() {  # bin shape bits env...
  local bin=$1 shape=$2 bits=$3; shift 3
  echo "== $(basename "$(dirname "$bin")") $shape $bits $*"
  env "$@" timeout 90 "$bin/pmpd" bench --backend cuda --shape "$shape" --bits "$bits" --prompt-tokens 128 --no-ops --schedule "" 2>&1 | grep -E "^\| (16|2|3)-bit|rror"
}
P=PMPD_CUDA_ATTN_PUSH=1
for rep in 1 2; do
  b $M vicuna-7b 3:3 X=1
  b $V vicuna-7b 3:3 X=1
  b $V vicuna-7b 3:3 $P
done
b $M vicuna-7b 2:2 X=1
b $V vicuna-7b 2:2 X=1
b $V vicuna-7b 2:2 $P
b $M phi-1.5 3:3 X=1
b $V phi-1.5 3:3 X=1
b $M zephyr-3b 3:3 X=1
b $V zephyr-3b 3:3 X=1
b $V zephyr-3b 3:3 $P
b $M mobilellama-1.4b 3:3 X=1
b $V mobilellama-1.4b 3:3 $P
