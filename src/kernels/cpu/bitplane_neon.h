// The NEON integer bit-plane GEMV (AArch64), built twice: with SDOT (Armv8.2 dot product,
// its own translation unit compiled for it) and without, picked at run time by
// bitplane.cpp from the CPU's HWCAP bits. Each returns kernels[b] for widths 1..8.
#pragma once
#include "kernels/cpu/bitplane.h"

namespace pmpd::kernels {

const Int8RowsFn* neon_int8_kernels();       // widening multiplies: every AArch64 core
const Int8RowsFn* neon_int8_kernels_sdot();  // SDOT: cores with the dot-product extension

}  // namespace pmpd::kernels
