// Packs per-row codes into the plane-major bit-plane layout the kernels read
// (kernels/cpu/bitplane.h): plane k of row r holds bit (bits_max-1-k) of each code.
#pragma once
#include <cstdint>
#include <vector>

namespace pmpd::quant {

// codes: rows x cols codes of `bits_max` bits; out: bits_max * rows * stride bytes.
void pack_bitplanes(const uint8_t* codes, int64_t rows, int64_t cols, int bits_max, uint8_t* out);

}  // namespace pmpd::quant
