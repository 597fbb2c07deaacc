#include "quant/bitplane_pack.h"

#include <cstring>

#include "kernels/cpu/bitplane.h"

namespace pmpd::quant {

void pack_bitplanes(const uint8_t* codes, int64_t rows, int64_t cols, int bits_max, uint8_t* out) {
  const int64_t stride = kernels::BitPlaneMatrix::stride_for(cols);
  std::memset(out, 0, size_t(bits_max) * size_t(rows) * size_t(stride));
  for (int k = 0; k < bits_max; ++k) {
    const int shift = bits_max - 1 - k;
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* p = out + (size_t(k) * size_t(rows) + size_t(r)) * size_t(stride);
      const uint8_t* c = codes + size_t(r) * size_t(cols);
      for (int64_t j = 0; j < cols; ++j) p[j >> 3] |= uint8_t(((c[j] >> shift) & 1) << (j & 7));
    }
  }
}

}  // namespace pmpd::quant
