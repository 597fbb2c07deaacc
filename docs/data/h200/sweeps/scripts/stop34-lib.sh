# shellcheck shell=bash
# Sourced by stop 34's A/B call scripts (from the repository root on the GPU machine): stop
# 33's helpers (b SHAPE BITS) with the main bundle as "new" and .gpu/head.tar.xz as "before";
# ab SHAPE BITS runs one bench of each, new first.
source docs/data/h200/sweeps/scripts/stop33-lib.sh
main=$N
head=$(mktemp -d) && tar -C "$head" -xJf .gpu/head.tar.xz
ab() { echo "-- new"; N=$main b "$@"; echo "-- before"; N=$head/bin b "$@"; }
