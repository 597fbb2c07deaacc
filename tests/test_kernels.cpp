// Every vectorised kernel equals the scalar reference on shapes that are not
// multiples of the vector width.
#include <omp.h>

#include <bit>
#include <random>
#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/dot.h"
#include "kernels/cpu/exp.h"
#include "kernels/cpu/ops.h"
#include "test_util.h"

namespace pmpd {
namespace {

TEST(Kernels, DotAllIsasMatchScalar) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (int n : {1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 100, 257, 1000}) {
    std::vector<float> w(static_cast<size_t>(n)), x(static_cast<size_t>(n));
    std::vector<uint16_t> h(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      w[i] = nd(rng), x[i] = nd(rng);
      h[i] = f32_to_f16(w[i]), b[i] = f32_to_bf16(w[i]);
    }
    for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
      kernels::set_isa(isa);
      for (auto [t, p] : {std::pair<DType, const void*>{DType::F32, w.data()}, {DType::F16, h.data()}, {DType::BF16, b.data()}}) {
        float ref = kernels::dot_scalar(t, p, x.data(), n);
        EXPECT_NEAR(kernels::dot(t, p, x.data(), n), ref, 1e-4 * (std::fabs(ref) + std::sqrt(float(n))))
            << "n=" << n << " dtype=" << dtype_name(t) << " isa=" << kernels::isa_name(kernels::active_isa());
      }
    }
  }
  kernels::set_isa(kernels::Isa::Avx512);
}

// exp_inplace on every ISA against exp_scalar, bit for bit, over a stride through all 2^32
// bit patterns (every range: subnormals, the underflow to 0 below -103.97, overflow above
// 88.72, infinities, NaNs) and lengths that leave every kind of tail.
TEST(Exp, EveryIsaEqualsTheScalarFormOnSampledFloats) {
  std::vector<float> xs;
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 65521) xs.push_back(std::bit_cast<float>(uint32_t(b)));
  for (float v : {0.f, -0.f, INFINITY, -INFINITY, NAN, 88.72283f, 88.72284f, -103.97208f, -103.97209f, -87.5f, 1e-8f})
    xs.push_back(v);
  // The only two floats whose result changes when r = x * 32 / ln 2 - k is a product, then a
  // difference, instead of one fused operation (found by comparing all 2^32).
  xs.push_back(0x1.04845ep+5f), xs.push_back(-0x1.f8cbb2p+5f);
  const kernels::Isa was = kernels::active_isa();
  for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
    kernels::set_isa(isa);
    for (int len : {int(xs.size()), 1, 7, 8, 9, 15, 17, 33}) {
      std::vector<float> y(xs.begin(), xs.begin() + len);
      kernels::exp_inplace(y.data(), len);
      for (int i = 0; i < len; ++i) {
        const float want = kernels::exp_scalar(xs[size_t(i)]);
        if (std::isnan(want)) {
          ASSERT_TRUE(std::isnan(y[size_t(i)])) << xs[size_t(i)];
        } else {
          ASSERT_EQ(std::bit_cast<uint32_t>(y[size_t(i)]), std::bit_cast<uint32_t>(want))
              << "x=" << xs[size_t(i)] << " isa=" << kernels::isa_name(kernels::active_isa());
        }
      }
    }
  }
  kernels::set_isa(was);
}

// Within one unit in the last place of e^x (computed in double) wherever the result is a
// normal float; the edges as libm gives them.
TEST(Exp, ScalarFormIsWithinOneUlp) {
  int worst = 0;
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 4093) {
    const float x = std::bit_cast<float>(uint32_t(b));
    if (std::isnan(x)) continue;
    const double want = std::exp(double(x));
    const float got = kernels::exp_scalar(x);
    if (want > 3.4e38 || want < 1.2e-38) continue;
    const int ulps = std::abs(int(std::bit_cast<uint32_t>(got)) - int(std::bit_cast<uint32_t>(float(want))));
    worst = std::max(worst, ulps);
    ASSERT_LE(ulps, 1) << "x=" << x;
  }
  EXPECT_EQ(kernels::exp_scalar(-INFINITY), 0.f);
  EXPECT_EQ(kernels::exp_scalar(INFINITY), INFINITY);
  EXPECT_EQ(kernels::exp_scalar(89.f), INFINITY);
  EXPECT_EQ(kernels::exp_scalar(-104.f), 0.f);
  EXPECT_TRUE(std::isnan(kernels::exp_scalar(NAN)));
  EXPECT_EQ(kernels::exp_scalar(0.f), 1.f);
}

// On x86-64 glibc (its FMA build of expf, which the x86-64 CPUs with AVX2 run) the scalar
// form and every ISA's exp_inplace give libm's bits for every float: the softmax and SiLU kept
// their results when they moved off std::exp. Every float, each path: ~30 s; run with
// --gtest_also_run_disabled_tests.
TEST(Exp, DISABLED_EveryPathEqualsLibmOnEveryFloat) {
  auto same = [](float a, float libm) {
    return std::isnan(libm) ? std::isnan(a) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(libm);
  };
  uint64_t differ = 0;
  for (uint64_t b = 0; b < (uint64_t(1) << 32); ++b) {
    const float x = std::bit_cast<float>(uint32_t(b));
    differ += !same(kernels::exp_scalar(x), std::exp(x));
  }
  EXPECT_EQ(differ, 0u) << "scalar form";
  const kernels::Isa was = kernels::active_isa();
  std::vector<float> chunk(1 << 20);
  for (auto isa : {kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
    kernels::set_isa(isa);
    if (kernels::active_isa() != isa) continue;
    differ = 0;
    for (uint64_t b0 = 0; b0 < (uint64_t(1) << 32); b0 += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = std::bit_cast<float>(uint32_t(b0 + i));
      kernels::exp_inplace(chunk.data(), int(chunk.size()));
      for (size_t i = 0; i < chunk.size(); ++i) differ += !same(chunk[i], std::exp(std::bit_cast<float>(uint32_t(b0 + i))));
    }
    EXPECT_EQ(differ, 0u) << kernels::isa_name(isa);
  }
  kernels::set_isa(was);
}

TEST(Kernels, DotRowsEqualDotRowByRow) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd;
  const kernels::Isa was = kernels::active_isa();
  const int64_t count = 37;
  for (int64_t n : {1, 15, 16, 64, 100, 256}) {
    std::vector<float> w(size_t(count * n)), x(static_cast<size_t>(n));
    std::vector<uint16_t> h(w.size()), b(w.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = nd(rng), h[i] = f32_to_f16(w[i]), b[i] = f32_to_bf16(w[i]);
    for (auto& e : x) e = nd(rng);
    for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
      kernels::set_isa(isa);
      for (auto [t, p] : {std::pair<DType, const void*>{DType::F32, w.data()}, {DType::F16, h.data()}, {DType::BF16, b.data()}}) {
        std::vector<float> y(static_cast<size_t>(count));
        kernels::dot_rows(t, p, count, x.data(), n, y.data());
        const size_t row_bytes = size_t(n) * dtype_size(t);
        for (int64_t r = 0; r < count; ++r)
          ASSERT_EQ(std::bit_cast<uint32_t>(y[size_t(r)]),
                    std::bit_cast<uint32_t>(kernels::dot(t, static_cast<const uint8_t*>(p) + size_t(r) * row_bytes, x.data(), n)))
              << "row " << r << " n=" << n << " dtype=" << dtype_name(t) << " isa=" << kernels::isa_name(kernels::active_isa());
      }
    }
  }
  kernels::set_isa(was);
}

// The decode attention kernel against the loop it replaced (a dot() and an add_scaled_f16()
// call per cached row, head by head): the same bits on every ISA, head sizes of one to
// sixteen vectors, groups of 1-5 query heads on one KV head (contexts longer than the
// kernel's block of positions included).
TEST(Kernels, AttendF16EqualsThePerRowLoop) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  const kernels::Isa was = kernels::active_isa();
  for (int hd : {16, 32, 48, 64, 80, 96, 128, 256}) {
    for (int len : {1, 2, 7, 33, 300}) {
      for (int heads : {1, 2, 5}) {
        if (heads > 1 && hd > 128 && len > 33) continue;  // enough: keeps the test short
        const int64_t stride = 3 * int64_t(hd) + 16;  // rows of other heads in between
        std::vector<uint16_t> k(size_t(len) * size_t(stride)), v(k.size());
        for (auto& e : k) e = f32_to_f16(2.f * nd(rng));
        for (auto& e : v) e = f32_to_f16(nd(rng));
        std::vector<float> q(size_t(heads) * size_t(hd));
        for (auto& e : q) e = nd(rng);
        const float scale = 1.f / std::sqrt(float(hd));
        for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
          kernels::set_isa(isa);
          const std::string where = "hd=" + std::to_string(hd) + " len=" + std::to_string(len) + " heads=" +
                                    std::to_string(heads) + " isa=" + kernels::isa_name(kernels::active_isa());
          std::vector<float> s1(size_t(heads) * size_t(len)), s2(static_cast<size_t>(len)), o1(q.size(), 7.f),
              o2(static_cast<size_t>(hd));
          kernels::attend_f16(q.data(), heads, k.data(), v.data(), stride, len, hd, scale, s1.data(), o1.data());
          for (int g = 0; g < heads; ++g) {
            std::fill(o2.begin(), o2.end(), -7.f);
            kernels::attend_f16_per_row(q.data() + g * hd, k.data(), v.data(), stride, len, hd, scale, s2.data(),
                                        o2.data());
            for (int i = 0; i < hd; ++i)
              ASSERT_EQ(std::bit_cast<uint32_t>(o1[size_t(g * hd + i)]), std::bit_cast<uint32_t>(o2[size_t(i)]))
                  << where << " head " << g << " i=" << i;
            for (int p = 0; p < len; ++p)
              ASSERT_EQ(std::bit_cast<uint32_t>(s1[size_t(g * len + p)]), std::bit_cast<uint32_t>(s2[size_t(p)]))
                  << where;
            // And both are attention: out = softmax(q.k * scale) v, to f32 rounding.
            std::vector<double> w(static_cast<size_t>(len));
            double mx = -1e30, sum = 0;
            for (int p = 0; p < len; ++p) {
              double d = 0;
              for (int i = 0; i < hd; ++i) d += double(f16_to_f32(k[size_t(p * stride + i)])) * q[size_t(g * hd + i)];
              w[size_t(p)] = d * scale, mx = std::max(mx, w[size_t(p)]);
            }
            for (auto& e : w) e = std::exp(e - mx), sum += e;
            for (int i = 0; i < hd; ++i) {
              double o = 0;
              for (int p = 0; p < len; ++p) o += w[size_t(p)] / sum * f16_to_f32(v[size_t(p * stride + i)]);
              ASSERT_NEAR(o2[size_t(i)], o, 1e-4 * (1 + std::fabs(o))) << where;
            }
          }
        }
      }
    }
  }
  kernels::set_isa(was);
}

TEST(Kernels, AttendF16RejectsHeadSizesOffTheVector) {
  std::vector<float> q(24), s(1), o(24);
  std::vector<uint16_t> kv(24);
  EXPECT_THROW(kernels::attend_f16(q.data(), 1, kv.data(), kv.data(), 24, 1, 24, 1.f, s.data(), o.data()), Error);
}

// A product enters a parallel region only where a team of more than one thread exists and
// the bytes pay for waking it (a region of one thread still costs a futex system call).
TEST(Kernels, WorthThreadsNeedsATeamAndEnoughBytes) {
  const size_t bound = kernels::min_parallel_bytes();
  const int threads_before = omp_get_max_threads();
  kernels::set_min_parallel_bytes(1000);
  omp_set_num_threads(2);
  EXPECT_TRUE(kernels::worth_threads(1000));
  EXPECT_FALSE(kernels::worth_threads(999));
  omp_set_num_threads(1);
  EXPECT_FALSE(kernels::worth_threads(size_t(1) << 30));
  kernels::set_min_parallel_bytes(0);
  EXPECT_FALSE(kernels::worth_threads(size_t(1) << 30));
  omp_set_num_threads(threads_before);
  kernels::set_min_parallel_bytes(bound);
}

TEST(Kernels, MatmulMultiTokenEqualsSingleToken) {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  const int rows = 37, cols = 53, tokens = 5;
  std::vector<uint16_t> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = f32_to_f16(nd(rng));
  TensorView W{"w", DType::F16, {rows, cols}, w.data()};
  std::vector<float> x(static_cast<size_t>(tokens * cols)), y(static_cast<size_t>(tokens * rows)), y1(static_cast<size_t>(rows));
  for (auto& v : x) v = nd(rng);
  kernels::matmul(W, x.data(), tokens, y.data());
  for (int t = 0; t < tokens; ++t) {
    kernels::matmul(W, x.data() + t * cols, 1, y1.data());
    for (int r = 0; r < rows; ++r) EXPECT_NEAR(y[size_t(t * rows + r)], y1[size_t(r)], 1e-4);
  }
  // The prompt's path equals widening each row and calling dot() for each token, bit for bit.
  std::vector<float> row(static_cast<size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    to_f32(DType::F16, w.data() + r * cols, row.data(), size_t(cols));
    for (int t = 0; t < tokens; ++t)
      EXPECT_EQ(y[size_t(t * rows + r)], kernels::dot(DType::F32, row.data(), x.data() + t * cols, cols));
  }
}

// The prompt's tiled products must give every (row, token) pair the very bits of dot(),
// so a prompt's logits do not depend on how its rows and tokens are blocked.
TEST(Kernels, DotTileIsBitIdenticalToDot) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
    kernels::set_isa(isa);
    for (int n : {1, 15, 16, 40, 64, 100, 257, 1000}) {
      for (auto [rows, tokens] : {std::pair{1, 1}, {5, 7}, {12, 9}, {13, 4}}) {
        const int64_t ldw = n + 3, ldx = n + 5, ldy = rows + 2;  // strides wider than the rows
        std::vector<float> w(size_t(rows * ldw)), x(size_t(tokens * ldx)), y(size_t(tokens * ldy), -1.f);
        for (auto& v : w) v = nd(rng);
        for (auto& v : x) v = nd(rng);
        std::vector<float> wl(w.size()), xl(x.size());
        for (int r = 0; r < rows; ++r) kernels::tile_layout(w.data() + r * ldw, n, wl.data() + r * ldw);
        for (int t = 0; t < tokens; ++t) kernels::tile_layout(x.data() + t * ldx, n, xl.data() + t * ldx);
        kernels::dot_tile(wl.data(), ldw, rows, xl.data(), ldx, tokens, n, y.data(), ldy);
        for (int t = 0; t < tokens; ++t)
          for (int r = 0; r < rows; ++r) {
            const float want = kernels::dot(DType::F32, w.data() + r * ldw, x.data() + t * ldx, n);
            ASSERT_EQ(std::bit_cast<uint32_t>(y[size_t(t * ldy + r)]), std::bit_cast<uint32_t>(want))
                << "n=" << n << " rows=" << rows << " tokens=" << tokens << " r=" << r << " t=" << t
                << " isa=" << kernels::isa_name(kernels::active_isa());
          }
        for (int t = 0; t < tokens; ++t)  // the gaps between rows of Y are left alone
          for (int r = rows; r < ldy; ++r) ASSERT_EQ(y[size_t(t * ldy + r)], -1.f);
      }
    }
  }
  kernels::set_isa(kernels::Isa::Avx512);
}

TEST(Kernels, RopeStylesAgreeUnderPermutation) {
  // Interleaved rope on permuted dims equals rotate-half rope on the original dims.
  const int hd = 8;
  kernels::RopeTable t(hd, 10000.f);
  std::vector<float> a = {1, 2, 3, 4, 5, 6, 7, 8}, b(8);
  for (int j = 0; j < hd / 2; ++j) b[2 * j] = a[j], b[2 * j + 1] = a[j + hd / 2];
  kernels::rope(a.data(), 1, hd, hd, 5, t, false);
  kernels::rope(b.data(), 1, hd, hd, 5, t, true);
  for (int j = 0; j < hd / 2; ++j) {
    EXPECT_FLOAT_EQ(a[j], b[2 * j]);
    EXPECT_FLOAT_EQ(a[j + hd / 2], b[2 * j + 1]);
  }
}

TEST(Kernels, NormsAndSoftmax) {
  std::vector<float> x = {1, 2, 3, 4}, out(4), w = {1, 1, 1, 1}, b = {0, 0, 0, 0};
  kernels::layernorm(out.data(), x.data(), w.data(), b.data(), 4, 0.f);
  EXPECT_NEAR(out[0] + out[1] + out[2] + out[3], 0, 1e-6);
  kernels::rmsnorm(out.data(), x.data(), w.data(), 4, 0.f);
  EXPECT_NEAR(out[3], 4 / std::sqrt(7.5), 1e-6);
  kernels::softmax(x.data(), 4);
  EXPECT_NEAR(x[0] + x[1] + x[2] + x[3], 1, 1e-6);
}

}  // namespace
}  // namespace pmpd
