#!/usr/bin/env bash
# stop 28: Zephyr-3B's bench on the final code (run.sh's last shape, cut by the call limit before)
set -uo pipefail
source tools/gpu/bundle_env.sh
timeout 150 "$root/bin/pmpd" bench --backend cuda --shape zephyr-3b --prompt-tokens 128 --json "$OUT/bench-zephyr-3b.json" > "$OUT/bench-zephyr-3b.md" 2>&1
echo "rc=$?"; grep -E "^\| (16|8|6|5|4|3|2)-bit|PMPD|switch" "$OUT/bench-zephyr-3b.md"
