#!/usr/bin/env bash
# stop 44 call 2 (diagnostic, the main bundle = the code of stop 43): the GEMVs' machine code
# and Nsight Compute's counters of the decode step's streaming and rolling GEMVs, so that where
# an item's time goes (the issue rate, shared-memory look-ups, device memory) can be read
# here, off the machine.
#  - res-usage.txt: registers, shared memory and stack of every GEMV instantiation (cuobjdump)
#  - gemv.sass.xz: the SASS of pair_lut_stream_kernel, pair_lut_roll_kernel and wide_roll_kernel
#  - ncu-B.txt: B = 3, 2, 4 bits, Vicuna-7B decode (--no-ops: greedy steps after a 128-token
#    prefill), five consecutive GEMV launches of one layer past the first steps, clocks left
#    alone (--clock-control none); each kernel runs alone under ncu (no overlap with the one
#    before), so its duration includes its start-up
set -uo pipefail
out=${OUT:-/tmp/out}
source docs/data/h200/stop43/scripts/lib.sh   # N = the main bundle's bin
t0=$(date +%s)
cuobjdump -res-usage "$N/pmpd" 2>&1 | grep -A1 -E "stream_kernel|roll_kernel" >"$out/res-usage.txt"
cuobjdump -sass "$N/pmpd" 2>/dev/null |
  awk '/Function :/ {keep = ($0 ~ /stream_kernel|roll_kernel/)} keep' | xz -9 >"$out/gemv.sass.xz"
ls -la "$out"
echo "sass $(( $(date +%s) - t0 )) s"
for bits in 3 2 4; do
  t1=$(date +%s)
  timeout 170 ncu --clock-control none --kernel-name regex:'pair_lut_(stream|roll)_kernel' \
    --launch-skip 260 --launch-count 5 --section SpeedOfLight --section ComputeWorkloadAnalysis \
    --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
    --section InstructionStats --section Occupancy --section LaunchStats \
    "$N/pmpd" bench --backend cuda --shape vicuna-7b --bits "$bits:$bits" --prompt-tokens 128 \
    --no-ops --schedule "" >"$out/ncu-$bits.txt" 2>&1
  echo "ncu $bits bits: rc $?, $(( $(date +%s) - t1 )) s"
  grep -E "pair_lut|Duration|Memory Throughput|DRAM Throughput|Issue Slots Busy|No Eligible" "$out/ncu-$bits.txt" | head -40
done
echo "total $(( $(date +%s) - t0 )) s"
