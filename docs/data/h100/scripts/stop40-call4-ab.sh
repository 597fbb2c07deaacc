#!/usr/bin/env bash
# stop 40 call 4, on the H100: variant builds against the main bundle (.gpu/NAME.tar.xz, pmpd
# alone, `PMPD_PACK_ONLY_PMPD=1 bash tools/gpu/pack.sh NAME`), Vicuna-7B end to end at 3 and 2
# bits interleaved build by build, then the per-operator rows at 3 bits.
#   VARIANTS="cfirst ..." bash stop40-call4-ab.sh
set -uo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
source docs/data/h200/sweeps/scripts/stop33-lib.sh
main=$N
for v in ${VARIANTS:?}; do mkdir -p "$root/$v" && tar -C "$root/$v" -xJf ".gpu/$v.tar.xz"; done
bin_of() { [ "$1" = main ] && echo "$main" || echo "$root/$1/bin"; }
{
  for r in 1 2 3; do for v in main $VARIANTS; do N=$(bin_of "$v"); echo "-- $v"; b vicuna-7b 3; done; done
  for r in 1 2; do for v in main $VARIANTS; do N=$(bin_of "$v"); echo "-- $v"; b vicuna-7b 2; done; done
  for v in main $VARIANTS; do
    echo "-- $v per operator"
    timeout 120 "$(bin_of "$v")/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --no-e2e 2>&1 | grep -E "^\| (3|16 \()"
  done
} 2>&1 | tee "$out/ab.txt"
