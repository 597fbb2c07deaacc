# shellcheck shell=bash
# Sourced by the GPU-machine scripts (run.sh, sweep.sh, quick.sh, ab.sh) from the repository root:
# unpacks .gpu/bundle.tar.xz (tools/gpu/pack.sh) into a temporary folder and points the
# loader at its libraries and at the machine's cuBLAS. Sets root (the unpacked bundle:
# root/bin/pmpd, root/bin/pmpd_tests).
# PMPD_BUNDLE_ROOT: a bundle unpacked before (a script that swapped binaries in it).
if [ -n "${PMPD_BUNDLE_ROOT:-}" ]; then
  root=$PMPD_BUNDLE_ROOT
else
  root=$(mktemp -d)
  tar -C "$root" -xJf .gpu/bundle.tar.xz
fi
cuda_lib=$(dirname "$(find / -name 'libcublas.so.13' -not -path '*/proc/*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH="$root/lib:$cuda_lib:${LD_LIBRARY_PATH:-}"
export PMPD_SOURCE_DIR=$PWD
