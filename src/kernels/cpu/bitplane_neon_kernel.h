// The NEON integer bit-plane kernel's body, included by bitplane_neon.cpp (PMPD_NEON_SDOT 0)
// and bitplane_neon_sdot.cpp (PMPD_NEON_SDOT 1, compiled with +dotprod). Everything here is
// in an unnamed namespace: each translation unit keeps its own copy.
//
// 64 columns per step. A plane's eight bytes become four vectors of 16 byte lanes (a TBL
// picks each lane's byte, then a bit test); the weights come from the row's byte table by
// TBL over up to four registers (64 entries; 7 and 8 bits chain TBX over 128 or 256), and the
// signed products are summed by SDOT or by widening multiplies. Per block of 256 columns the
// integer sum is scaled as the scalar reference (bitplane_dot_int8_scalar) scales it.
#pragma once
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/bitplane_neon.h"

namespace pmpd::kernels {
namespace {

template <int B>
struct NeonTable {
  static constexpr int kRegs = B <= 6 ? 1 : 1 << (B - 6);  // 64-entry groups
  int8x16x4_t t[kRegs];
  // Straight from the table into registers (no zeroed stack copy to reload: on x86 that
  // reload missed store forwarding on every row); codes never index past 2^B entries.
  void load(const uint8_t* lut) {
    for (int g = 0; g < kRegs; ++g)
      for (int i = 0; i < 4; ++i) {
        const int first = 64 * g + 16 * i;
        uint8x16_t v = vdupq_n_u8(0);
        if (first + 16 <= (1 << B)) {
          v = vld1q_u8(lut + first);
        } else if (first == 0) {  // B < 4: a table shorter than one register
          uint64_t word = 0;
          std::memcpy(&word, lut, size_t(1) << B);
          v = vcombine_u8(vcreate_u8(word), vdup_n_u8(0));
        }
        // Stored as value + 128: flipping the top bit gives the signed weight.
        t[g].val[i] = vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x80)));
      }
  }
  int8x16_t lookup(uint8x16_t code) const {
    int8x16_t w = vqtbl4q_s8(t[0], code);  // lanes past 63 give 0, then TBX fills them from the next group
    for (int g = 1; g < kRegs; ++g) w = vqtbx4q_s8(w, t[g], vsubq_u8(code, vdupq_n_u8(uint8_t(64 * g))));
    return w;
  }
};

inline int32x4_t dot_s8(int32x4_t acc, int8x16_t w, int8x16_t x) {
#if PMPD_NEON_SDOT
  return vdotq_s32(acc, w, x);
#else
  int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));  // |w|, |x| <= 127: two products fit 16 bits
  p = vmlal_high_s8(p, w, x);
  return vpadalq_s16(acc, p);
#endif
}

template <int B>
float dot_int8_neon(const BitPlaneMatrix& m, const Int8Width& tables, int64_t r, const Int8Activations& a) {
  NeonTable<B> table;
  table.load(tables.bytes + (size_t(r) << B));
  const uint8_t* pl[B];
  for (int k = 0; k < B; ++k) pl[k] = m.plane(k, r);
  // Lane i of 16 columns q (0..3 of a 64-column group) holds plane byte 2q + i / 8 (one TBL
  // of the group's eight bytes) and tests bit i % 8.
  static constexpr uint8_t kBitOf[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  static constexpr uint8_t kByteOf[4][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                             {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
                                             {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
                                             {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};
  const uint8x16_t bit = vld1q_u8(kBitOf);
  uint8x16_t byte_of[4];
  for (int q = 0; q < 4; ++q) byte_of[q] = vld1q_u8(kByteOf[q]);
  const int64_t groups = (m.cols + 63) / 64;  // planes are padded to 64 columns with zero bits
  constexpr int64_t kPerBlock = Int8Activations::kBlock / 64;
  double total = 0;
  for (int64_t g0 = 0; g0 < groups; g0 += kPerBlock) {
    int32x4_t acc = vdupq_n_s32(0);
    const int64_t g1 = std::min<int64_t>(groups, g0 + kPerBlock);
    for (int64_t g = g0; g < g1; ++g) {
      uint8x16_t code[4] = {vdupq_n_u8(0), vdupq_n_u8(0), vdupq_n_u8(0), vdupq_n_u8(0)};
      for (int k = 0; k < B; ++k) {
        const uint8x16_t bytes = vcombine_u8(vld1_u8(pl[k] + 8 * g), vdup_n_u8(0));
        for (int q = 0; q < 4; ++q)  // a set bit tests as 0xff = -1
          code[q] = vsubq_u8(vshlq_n_u8(code[q], 1), vtstq_u8(vqtbl1q_u8(bytes, byte_of[q]), bit));
      }
      for (int q = 0; q < 4; ++q) acc = dot_s8(acc, table.lookup(code[q]), vld1q_s8(a.q.data() + g * 64 + q * 16));
    }
    total += double(vaddvq_s32(acc)) * a.scale[size_t(g0 / kPerBlock)];
  }
  return tables.scale[r] * float(total);
}

template <int B>
void rows_int8_neon(const BitPlaneMatrix& m, const Int8Width& tables, const Int8Activations& a, int64_t r0, int64_t r1,
                    float* y) {
  for (int64_t r = r0; r < r1; ++r) y[r] = dot_int8_neon<B>(m, tables, r, a);
}

constexpr Int8RowsFn kNeonKernels[9] = {nullptr, rows_int8_neon<1>, rows_int8_neon<2>, rows_int8_neon<3>,
                                        rows_int8_neon<4>, rows_int8_neon<5>, rows_int8_neon<6>,
                                        rows_int8_neon<7>, rows_int8_neon<8>};

}  // namespace
}  // namespace pmpd::kernels
