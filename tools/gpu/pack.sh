#!/usr/bin/env bash
# Builds pmpd with CUDA here (the CI image: Debian 12, nvcc 13) and packs the binaries
# with the Debian libraries they need into .gpu/bundle.tar.xz, for the GPU machine, which
# has CUDA but none of pmpd's other build dependencies and no network.
#   bash tools/gpu/pack.sh          then, on the GPU machine (device tool, carry .gpu):
#   bash tools/gpu/run.sh OUTDIR [SHAPES...]
# With a NAME (bash tools/gpu/pack.sh NAME), only the two binaries go to .gpu/NAME.tar.xz:
# a variant build for tools/gpu/ab.sh, which takes the libraries from the main bundle.
# PMPD_PACK_CMAKE: extra CMake options (a variant's, e.g. -DPMPD_CUDA_TIMELINE=ON for
# tools/gpu/timeline.sh). Every pack sets PMPD_CUDA_TIMELINE=OFF unless told otherwise; other
# options stay in build/'s cache until set again (e.g. -DCMAKE_CUDA_FLAGS= clears a define).
# PMPD_PACK_ONLY_PMPD=1: the variant holds bin/pmpd alone (smaller: the device tool carries
# at most 64 MiB, the working tree included, whose committed models take ~40 MB).
# PMPD_PACK_ARCH: the CUDA architectures packed (default 90-real: Hopper machine code only, no
# PTX; a bundle of 14.7 MB and a pmpd variant of 3.6 MB against 16.6 and 5.5 with PTX, so that
# the main bundle and a variant fit beside the working tree; two only just).
set -euo pipefail
cd "$(dirname "$0")/../.."
variant=${1:-}
# shellcheck disable=SC2086  # PMPD_PACK_CMAKE is a list of options
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPMPD_CUDA=ON -DPMPD_CUDA_TIMELINE=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="${PMPD_PACK_ARCH:-90-real}" ${PMPD_PACK_CMAKE:-} >/dev/null
targets=(pmpd pmpd_tests)
[ -n "$variant" ] && [ "${PMPD_PACK_ONLY_PMPD:-0}" = 1 ] && targets=(pmpd)
cmake --build build -j"$(nproc)" --target "${targets[@]}"
stage=$(mktemp -d)
mkdir -p "$stage/bin" "$stage/lib" .gpu
cp build/pmpd "$stage/bin/"
[ "${#targets[@]}" = 2 ] && cp build/tests/pmpd_tests "$stage/bin/"
if [ -n "$variant" ]; then
  XZ_OPT=-9e tar -C "$stage" -cJf ".gpu/$variant.tar.xz" bin
  rm -rf "$stage"
  ls -la ".gpu/$variant.tar.xz"
  exit 0
fi
# Every shared library outside glibc, libstdc++ and CUDA (those come with the GPU machine).
ldd build/pmpd build/tests/pmpd_tests | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|/usr/local/cuda' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
XZ_OPT=-9e tar -C "$stage" -cJf .gpu/bundle.tar.xz bin lib
rm -rf "$stage"
ls -la .gpu/bundle.tar.xz
