#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/dtype.h"
TEST(DType, F16RoundTrip) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1e-5f, 1e-7f})
    EXPECT_NEAR(pmpd::f16_to_f32(pmpd::f32_to_f16(f)), f, std::abs(f) * 1e-3 + 1e-7);
}

// The row conversion (F16C / NEON where present) gives f32_to_f16's bits for every kind of
// float: every 4099th bit pattern (normals, subnormals, both zeros, infinities, NaNs with
// payloads), the rounding boundaries around each f16 step, and rows whose length leaves a tail.
TEST(DType, F32ToF16RowEqualsScalar) {
  std::vector<float> in;
  auto push_bits = [&](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    in.push_back(f);
  };
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 4099) push_bits(uint32_t(b));
  for (uint32_t h = 0; h < 0x7c00; h += 7)  // a tie between f16 steps h and h + 1, and its neighbours
    for (uint32_t sign : {0u, 0x80000000u}) {
      float lo = pmpd::f16_to_f32(uint16_t(h)), hi = pmpd::f16_to_f32(uint16_t(h + 1));
      uint32_t a, c;
      std::memcpy(&a, &lo, 4), std::memcpy(&c, &hi, 4);
      const uint32_t mid = (a + c) / 2;
      for (uint32_t b : {mid - 1, mid, mid + 1}) push_bits(b | sign);
    }
  for (uint32_t b : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc12345u, 0x7f800001u, 0x477ff000u, 0x477fefffu,
                     0x33000000u, 0x33000001u, 0x80000000u})
    push_bits(b);
  std::vector<uint16_t> out(in.size());
  for (size_t n : {in.size(), size_t(13), size_t(3)}) {
    std::fill(out.begin(), out.end(), uint16_t(0xdead));
    pmpd::f32_to_f16_row(in.data(), out.data(), n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t b;
      std::memcpy(&b, &in[i], 4);
      ASSERT_EQ(out[i], pmpd::f32_to_f16(in[i])) << std::hex << "f32 bits 0x" << b;
    }
    if (n < out.size()) {
      EXPECT_EQ(out[n], 0xdead);
    }
  }
}

// Every one of the 2^32 floats through both conversions (~10 s, so not in the default run):
//   ./build/tests/pmpd_tests --gtest_also_run_disabled_tests --gtest_filter='DType.DISABLED_*'
TEST(DType, DISABLED_F32ToF16RowEqualsScalarOnEveryFloat) {
  const size_t chunk = size_t(1) << 24;
  std::vector<float> in(chunk);
  std::vector<uint16_t> out(chunk);
  for (uint64_t base = 0; base < (uint64_t(1) << 32); base += chunk) {
    for (size_t i = 0; i < chunk; ++i) {
      const uint32_t b = uint32_t(base + i);
      std::memcpy(&in[i], &b, 4);
    }
    pmpd::f32_to_f16_row(in.data(), out.data(), chunk);
    for (size_t i = 0; i < chunk; ++i)
      ASSERT_EQ(out[i], pmpd::f32_to_f16(in[i])) << std::hex << "f32 bits 0x" << uint32_t(base + i);
  }
}
