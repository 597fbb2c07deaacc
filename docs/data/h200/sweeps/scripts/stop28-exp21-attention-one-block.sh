#!/usr/bin/env bash
# stop 28, exp 1: one 1024-thread block a head (heads of 128 / 80) against the split attention
set -uo pipefail
source tools/gpu/bundle_env.sh
which cuobjdump nvdisasm 2>&1 | head -2
timeout 120 "$root/bin/pmpd_tests" --gtest_filter='*Cuda*' >"$OUT/tests.txt" 2>&1
echo "tests rc=$?"; grep -E "PASSED|FAILED" "$OUT/tests.txt" | tail -5
b() {  # shape bits prompt env...
  local shape=$1 bits=$2 prompt=$3; shift 3
  echo "== $shape $bits p$prompt $*"
  env "$@" timeout 90 "$root/bin/pmpd" bench --backend cuda --shape "$shape" --bits "$bits" --prompt-tokens "$prompt" --no-ops --schedule "" 2>&1 | grep -E "^\| (16|2|3)-bit|rror"
}
ONE=PMPD_CUDA_ATTN_ONE_BLOCK_CONTEXT=100000
for rep in 1 2; do
  b vicuna-7b 3:3 128 X=1
  b vicuna-7b 3:3 128 $ONE
done
b vicuna-7b 2:2 128 X=1
b vicuna-7b 2:2 128 $ONE
b vicuna-7b 3:3 1024 X=1
b vicuna-7b 3:3 1024 $ONE
b vicuna-7b 3:3 384 X=1
b vicuna-7b 3:3 384 $ONE
b zephyr-3b 3:3 128 X=1
b zephyr-3b 3:3 128 $ONE
b mobilellama-1.4b 3:3 128 X=1
b mobilellama-1.4b 3:3 128 $ONE
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$root/bin/pmpd" > /tmp/all.sass 2>&1
  awk '/Function : .*pair_lut_stream_kernelILi3ELb0ELi1ELb0E/{p=1} p{print} p&&/EXIT/{n++} p&&/\.L_x_[0-9]+:$/&&0{} /Function : /&&!/pair_lut_stream_kernelILi3ELb0ELi1ELb0E/{p=0}' /tmp/all.sass > "$OUT/sass-stream3.txt"
  wc -l "$OUT/sass-stream3.txt"
fi
