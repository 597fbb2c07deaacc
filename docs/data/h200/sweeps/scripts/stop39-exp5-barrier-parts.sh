#!/usr/bin/env bash
# stop 39 call 5: --sync-costs with the persistent phase split into its parts (no barrier: the
# dependent read and write alone; barrier without the read: the wait alone), three runs; the
# chain's correctness test.
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
timeout 60 "$N/pmpd_tests" --gtest_filter='Cuda.SyncChain*' 2>&1 | grep -E "OK|PASSED|FAILED" | tee "$out/tests.txt"
for r in 1 2 3; do timeout 100 "$N/pmpd" bench --backend cuda --sync-costs 2>&1 | tee "$out/sync-costs-$r.md" | grep -E "^\| [0-9]"; done
