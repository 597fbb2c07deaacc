# Sourced by stop 42's call scripts (repository root, GPU machine): stop 33's bench helper
# (b SHAPE BITS [VAR=VALUE...]) and t LABEL [VAR=VALUE...], the CUDA tests under those
# settings into $out/tests-LABEL.txt, printing their summary (the preamble stop 41's scripts
# each wrote out).
source docs/data/h200/sweeps/scripts/stop33-lib.sh
mkdir -p "$out"
t() { local label=$1 t0; shift; t0=$(date +%s)
  env "$@" timeout 240 "$N/pmpd_tests" --gtest_filter='*Cuda*' >"$out/tests-$label.txt" 2>&1
  echo "tests $label ($*): rc $?, $(( $(date +%s) - t0 )) s"
  grep -E "^\[  (PASSED|FAILED|SKIPPED)|^\[  FAILED" "$out/tests-$label.txt" | head -20; }
