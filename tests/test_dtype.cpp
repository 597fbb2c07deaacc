#include <gtest/gtest.h>
#include "core/dtype.h"
TEST(DType, F16RoundTrip) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1e-5f, 1e-7f})
    EXPECT_NEAR(pmpd::f16_to_f32(pmpd::f32_to_f16(f)), f, std::abs(f) * 1e-3 + 1e-7);
}
