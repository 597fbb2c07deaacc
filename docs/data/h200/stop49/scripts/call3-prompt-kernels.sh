#!/usr/bin/env bash
# stop 49 call 3 (H200): where a prompt pass's time goes, kernel by kernel, now that the
# attention runs on the tensor cores: Nsight Compute's duration of the first kernels of
# `pmpd bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens P --new-tokens 2
# --no-ops --schedule ""` (the first prompt pass is the 16-bit model's: layer 0 and on), at P =
# 128 and 1920, and the 3-bit dequantization kernels at P = 128. ncu serializes kernels, so the
# durations are each kernel alone (no overlap with its neighbours). Main bundle = stop 49 call 2's.
# --launch-skip 128: the model load's tile builds (4 a layer) come first.
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # N = the main bundle's bin
t0=$(date +%s)
ncu_bin=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
prof() { local name=$1 p=$2; shift 2
  timeout 200 "$ncu_bin" --metrics gpu__time_duration.sum --csv "$@" \
    "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --prompt-tokens "$p" --new-tokens 2 --no-ops --schedule "" \
    > "$out/$name.csv" 2> "$out/$name.err"
  echo "== $name (P=$p $*): rc $? ($(( $(date +%s) - t0 )) s)"
  python3 - "$out/$name.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows: print("no rows"); sys.exit()
h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value"); ui = h.index("Metric Unit")
for r in rows[1:]:
    print(f"{r[vi]:>12} {r[ui]:<6} {r[ki][:110]}")
PY
}
prof p1920 1920 --launch-skip 128 --launch-count 40
prof p128 128 --launch-skip 128 --launch-count 40
prof dq128 128 -k regex:dequant --launch-count 8
echo "total $(( $(date +%s) - t0 )) s"
