// The any-precision quantizer and its bit-plane kernels.
#include <omp.h>

#include <random>
#include <thread>

#include "decode/generator.h"
#include "kernels/cpu/bitplane.h"
#include "kernels/cpu/dot.h"
#include "quant/anyprec.h"
#include "quant/bitplane_pack.h"
#include "quant/dense_sparse.h"
#include "quant/quantize_model.h"
#include "test_util.h"

namespace pmpd {
namespace {

std::vector<float> random_row(int n, uint32_t seed, bool heavy_tail = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::student_t_distribution<float> td(3.f);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto &x : w)
    x = heavy_tail ? 0.02f * td(rng) : nd(rng);
  return w;
}

std::vector<float> random_sens(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> ed(1.f);
  std::vector<float> s(static_cast<size_t>(n));
  for (auto &x : s)
    x = ed(rng);
  return s;
}

TEST(AnyPrec, CodesNestAndErrorNeverGrowsWithBits) {
  for (int n : {1, 3, 17, 256, 1000}) {
    auto w = random_row(n, 10 + n), s = random_sens(n, 20 + n);
    auto q = quant::quantize_row_anyprec(w.data(), s.data(), n, 2, 8, 7);
    ASSERT_EQ(q.tables.size(), 7u);
    for (int b = 2; b <= 8; ++b) {
      const auto &t = q.tables[size_t(b - 2)];
      ASSERT_EQ(t.size(), size_t(1) << b);
      EXPECT_TRUE(std::is_sorted(t.begin(), t.end()))
          << "centroids ascending at " << b << " bits";
    }
    double prev = INFINITY;
    for (int b = 2; b <= 8; ++b) {
      double e = quant::weighted_error(w.data(), s.data(), n, q, b);
      EXPECT_LE(e, prev * (1 + 1e-12) + 1e-30) << "n=" << n << " bits=" << b;
      prev = e;
    }
  }
}

TEST(AnyPrec, NonUniformSeedBeatsUniformAtSameWidth) {
  const int n = 4096;
  auto w = random_row(n, 1), s = random_sens(n, 2);
  for (int b : {2, 3, 4}) {
    auto q = quant::quantize_row_anyprec(w.data(), s.data(), n, b, b, 3);
    auto u = quant::quantize_row_uniform(w.data(), n, b);
    EXPECT_LT(quant::weighted_error(w.data(), s.data(), n, q, b),
              quant::weighted_error(w.data(), s.data(), n, u, b))
        << b << " bits";
  }
}

TEST(Uniform, PerGroupScalesBeatOnePerRow) {
  const int n = 1024;
  auto w = random_row(n, 9);
  for (int i = 0; i < n / 4; ++i)
    w[size_t(i)] *= 8; // one part of the row has a wider range
  for (int b : {2, 3, 4}) {
    auto row = quant::quantize_row_uniform(w.data(), n, b);
    auto grouped = quant::quantize_row_uniform(w.data(), n, b, 128);
    EXPECT_EQ(grouped.tables[0].size(), size_t(8) << b);
    EXPECT_LT(quant::weighted_error(w.data(), nullptr, n, grouped, b),
              quant::weighted_error(w.data(), nullptr, n, row, b));
  }
}

TEST(AnyPrec, ZeroSensitivityRowFallsBackToUniformWeights) {
  const int n = 64;
  auto w = random_row(n, 5);
  std::vector<float> zero(n, 0.f), ones(n, 1.f);
  auto a = quant::quantize_row_anyprec(w.data(), zero.data(), n, 2, 4, 1);
  auto b = quant::quantize_row_anyprec(w.data(), ones.data(), n, 2, 4, 1);
  EXPECT_EQ(a.codes, b.codes);
  // Constant rows (every weight equal) quantize exactly.
  std::vector<float> c(n, 0.5f);
  auto q = quant::quantize_row_anyprec(c.data(), ones.data(), n, 2, 8, 1);
  for (int bits = 2; bits <= 8; ++bits)
    EXPECT_EQ(quant::weighted_error(c.data(), ones.data(), n, q, bits), 0.0);
}

// Builds a BitPlaneMatrix (and its storage) from random rows.
struct TestMatrix {
  std::vector<uint8_t> planes;
  std::vector<std::vector<uint16_t>> tables;
  kernels::BitPlaneMatrix m;
  std::vector<std::vector<float>> rows;
  TestMatrix(int64_t R, int64_t C, int lo, int hi) {
    std::vector<uint8_t> codes(size_t(R * C));
    tables.resize(size_t(hi - lo + 1));
    for (int64_t r = 0; r < R; ++r) {
      rows.push_back(random_row(int(C), uint32_t(100 + r)));
      auto s = random_sens(int(C), uint32_t(200 + r));
      auto q = quant::quantize_row_anyprec(rows.back().data(), s.data(), int(C),
                                           lo, hi, uint64_t(r));
      std::copy(q.codes.begin(), q.codes.end(), codes.begin() + r * C);
      for (int b = lo; b <= hi; ++b)
        for (float v : q.tables[size_t(b - lo)])
          tables[size_t(b - lo)].push_back(f32_to_f16(v));
    }
    m.rows = R, m.cols = C, m.bits_min = lo, m.bits_max = hi,
    m.plane_stride = kernels::BitPlaneMatrix::stride_for(C);
    planes.resize(size_t(hi) * size_t(R) * size_t(m.plane_stride));
    quant::pack_bitplanes(codes.data(), R, C, hi, planes.data());
    m.planes = planes.data();
    for (auto &t : tables)
      m.tables.push_back(t.data());
  }
};

TEST(BitPlaneKernels, EveryWidthAndIsaMatchesScalarOnOddShapes) {
  for (auto [R, C] : {std::pair<int64_t, int64_t>{5, 1},
                      {7, 15},
                      {9, 17},
                      {3, 100},
                      {33, 257},
                      {8, 1024}}) {
    TestMatrix t(R, C, 1, 8);
    auto x = random_row(int(C), 999, false);
    for (int b = 1; b <= 8; ++b) {
      std::vector<float> ref(static_cast<size_t>(R)), y(static_cast<size_t>(R)),
          deq(static_cast<size_t>(C));
      for (int64_t r = 0; r < R; ++r) {
        ref[size_t(r)] = kernels::bitplane_dot_scalar(t.m, b, r, x.data());
        kernels::set_isa(kernels::Isa::Scalar);
        kernels::bitplane_dequant_row(t.m, b, r, deq.data());
        EXPECT_NEAR(kernels::dot_scalar(DType::F32, deq.data(), x.data(), C),
                    ref[size_t(r)], 1e-4);
        // The vector dequantization gives the table's very values.
        std::vector<float> deq_vec(static_cast<size_t>(C));
        for (auto isa : {kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
          kernels::set_isa(isa);
          kernels::bitplane_dequant_row(t.m, b, r, deq_vec.data());
          ASSERT_EQ(deq_vec, deq) << R << "x" << C << " bits " << b << " row " << r << " isa "
                                  << kernels::isa_name(kernels::active_isa());
        }
        kernels::set_isa(kernels::Isa::Avx512);
      }
      for (auto isa :
           {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
        kernels::set_isa(isa);
        kernels::bitplane_matmul(t.m, b, x.data(), 1, y.data());
        for (int64_t r = 0; r < R; ++r)
          EXPECT_NEAR(y[size_t(r)], ref[size_t(r)],
                      1e-4 * (1 + std::fabs(ref[size_t(r)])))
              << R << "x" << C << " bits " << b << " isa "
              << kernels::isa_name(kernels::active_isa());
      }
      kernels::set_isa(kernels::Isa::Avx512);
      // The multi-token (prompt) path equals the single-token path.
      std::vector<float> x2(x.begin(), x.end());
      x2.insert(x2.end(), x.begin(), x.end());
      std::vector<float> y2(static_cast<size_t>(2 * R));
      kernels::bitplane_matmul(t.m, b, x2.data(), 2, y2.data());
      for (int64_t r = 0; r < R; ++r)
        EXPECT_NEAR(y2[size_t(R + r)], ref[size_t(r)],
                    1e-4 * (1 + std::fabs(ref[size_t(r)])));
      // A longer prompt (past the per-token integer products) gives each token the bits
      // of the dequantized row's dot() with it, under every ISA.
      const int tokens = 7;
      std::vector<float> xs;
      for (int tk = 0; tk < tokens; ++tk) {
        auto xt = random_row(int(C), 1000 + uint32_t(tk), false);
        xs.insert(xs.end(), xt.begin(), xt.end());
      }
      std::vector<float> ys(static_cast<size_t>(tokens * R));
      for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
        kernels::set_isa(isa);
        kernels::bitplane_matmul(t.m, b, xs.data(), tokens, ys.data());
        for (int64_t r = 0; r < R; ++r) {
          kernels::bitplane_dequant_row(t.m, b, r, deq.data());
          for (int tk = 0; tk < tokens; ++tk)
            ASSERT_EQ(ys[size_t(tk * R + r)], kernels::dot(DType::F32, deq.data(), xs.data() + tk * C, C))
                << R << "x" << C << " bits " << b << " token " << tk << " isa "
                << kernels::isa_name(kernels::active_isa());
        }
      }
      kernels::set_isa(kernels::Isa::Avx512);
    }
  }
}

TEST(BitPlaneKernels, Int8KernelEqualsItsScalarReferenceAndStaysCloseToExact) {
  if (kernels::active_isa() == kernels::Isa::Scalar)
    GTEST_SKIP() << "no AVX2 or NEON";
  for (auto isa : {kernels::Isa::Avx2, kernels::Isa::Avx512,  // VBMI + VNNI where the CPU has them
                   kernels::Isa::Neon}) {
    kernels::set_isa(isa);
    for (auto [R, C] : {std::pair<int64_t, int64_t>{5, 1},
                        {7, 63},
                        {9, 65},
                        {3, 300},
                        {33, 1000},
                        {4, 4096}}) {
      TestMatrix t(R, C, 1, 8);
      kernels::prepare_int8(t.m);
      auto x = random_row(int(C), 4242, false);
      kernels::Int8Activations a;
      kernels::quantize_activations(x.data(), C, a);
      for (int b = 1; b <= 8; ++b) {
        std::vector<float> y(static_cast<size_t>(R));
        kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
        kernels::bitplane_matmul(t.m, b, x.data(), 1, y.data());
        double err = 0, scale = 0;
        for (int64_t r = 0; r < R; ++r) {
          float ref = kernels::bitplane_dot_int8_scalar(t.m, b, r, a);
          EXPECT_NEAR(y[size_t(r)], ref, 1e-4 * (1 + std::fabs(ref)))
              << R << "x" << C << " bits " << b;
          float exact = kernels::bitplane_dot_scalar(t.m, b, r, x.data());
          err = std::max(err, double(std::fabs(y[size_t(r)] - exact)));
          // |w| * |x| summed bounds the size of the dot product's terms
          std::vector<float> w(static_cast<size_t>(C));
          kernels::bitplane_dequant_row(t.m, b, r, w.data());
          double mag = 0;
          for (int64_t j = 0; j < C; ++j)
            mag += std::fabs(w[size_t(j)] * x[size_t(j)]);
          scale = std::max(scale, mag);
        }
        EXPECT_LT(err, 0.02 * scale + 1e-6) << "int8 vs exact, bits " << b;
      }
    }
  }
  kernels::set_isa(kernels::Isa::Avx512);
  kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
}

// Activations are rounded half away from zero, as std::lround rounds: ties, values a hair
// below a half, and random values over several blocks.
TEST(BitPlaneKernels, ActivationQuantizationRoundsLikeLround) {
  std::vector<float> x = {127.f, 2.5f, -2.5f, 0.5f, -0.5f, 0.49999997f, -0.49999997f, 126.5f, -126.5f, 3.4999998f,
                          -0.f, 0.f, 1e-30f, -1e-30f};
  auto extra = random_row(600, 99, false);
  for (float v : extra) x.push_back(v * 40.f);
  kernels::Int8Activations a;
  kernels::quantize_activations(x.data(), int64_t(x.size()), a);
  for (size_t j = 0; j < x.size(); ++j) {
    const float s = a.scale[j / kernels::Int8Activations::kBlock];
    EXPECT_EQ(int(a.q[j]), int(std::lround(x[j] / s))) << "x[" << j << "] = " << x[j];
  }
  EXPECT_EQ(a.scale[0], 1.f);  // the first block's largest |x| is 127: the ties above are exact
  EXPECT_EQ(int(a.q[1]), 3);
  EXPECT_EQ(int(a.q[2]), -3);
}

// The vector activation quantizer gives the scalar one's bytes, scales and offset on
// every length (whole blocks, partial blocks, a partial last vector) and on an all-zero block.
TEST(BitPlaneKernels, ActivationQuantizationIsTheSameOnEveryIsa) {
  for (int64_t n : {1, 15, 17, 255, 256, 257, 600, 1000}) {
    auto x = random_row(int(n), 31 + int(n), false);
    for (size_t j = 0; j < x.size(); ++j) x[j] *= (j % 7 == 0) ? 300.f : 3.f;
    if (n == 600)
      for (int j = 256; j < 512; ++j) x[size_t(j)] = 0.f;
    kernels::set_isa(kernels::Isa::Scalar);
    kernels::Int8Activations ref;
    kernels::quantize_activations(x.data(), n, ref);
    for (auto isa : {kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
      kernels::set_isa(isa);
      kernels::Int8Activations got;
      kernels::quantize_activations(x.data(), n, got);
      EXPECT_EQ(got.q, ref.q) << n << " " << kernels::isa_name(kernels::active_isa());
      EXPECT_EQ(got.scale, ref.scale) << n;
      EXPECT_EQ(got.offset, ref.offset) << n;
    }
  }
  kernels::set_isa(kernels::Isa::Avx512);
}

// The byte tables the integer kernels read: each entry is the row's centroid over the row's
// scale, rounded as std::lround rounds, plus 128.
TEST(BitPlaneKernels, ByteTablesRoundLikeLround) {
  TestMatrix t(37, 70, 1, 8);
  kernels::prepare_int8(t.m);
  for (int b = 1; b <= 8; ++b)
    for (int64_t r = 0; r < t.m.rows; ++r) {
      const uint16_t* table = t.m.table(b, r);
      float mx = 0;
      for (int c = 0; c < (1 << b); ++c) mx = std::max(mx, std::fabs(f16_to_f32(table[c])));
      const kernels::Int8Width w = kernels::int8_width(t.m, b);
      const float s = w.scale[r];
      ASSERT_EQ(s, mx > 0 ? mx / 127.f : 1.f);
      for (int c = 0; c < (1 << b); ++c)
        ASSERT_EQ(int(w.bytes[(size_t(r) << b) + size_t(c)]),
                  int(std::lround(f16_to_f32(table[c]) / s)) + 128)
            << "bits " << b << " row " << r << " entry " << c;
    }
}

// The byte tables are built per width on first use: a load builds none (every width of a
// 7B model is ~0.7 GB), a product builds its own width only, and threads asking for the
// same width at once get one build.
TEST(BitPlaneKernels, ByteTablesAreBuiltPerWidthOnFirstUse) {
  TestMatrix t(37, 70, 2, 8);
  kernels::prepare_int8(t.m);
  EXPECT_EQ(kernels::int8_table_bytes(t.m), 0u);
  const size_t rows = size_t(t.m.rows);
  const kernels::Int8Width w3 = kernels::int8_width(t.m, 3);
  EXPECT_EQ(kernels::int8_table_bytes(t.m), rows * 8 + rows * sizeof(float));
  EXPECT_EQ(kernels::int8_width(t.m, 3).bytes, w3.bytes) << "built again";
  std::vector<const uint8_t*> seen(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) threads.emplace_back([&, i] { seen[i] = kernels::int8_width(t.m, 6).bytes; });
  for (auto& th : threads) th.join();
  for (const uint8_t* p : seen) EXPECT_EQ(p, seen[0]);
  EXPECT_EQ(kernels::int8_table_bytes(t.m), rows * (8 + 64) + 2 * rows * sizeof(float));
  // A product through the library builds its width where the integer kernel runs.
  if (kernels::bitplane_kernel() == kernels::BitPlaneKernel::Int8) {
    std::vector<float> y(rows);
    kernels::bitplane_matmul(t.m, 2, t.rows[0].data(), 1, y.data());
    EXPECT_EQ(kernels::int8_table_bytes(t.m), rows * (8 + 64 + 4) + 3 * rows * sizeof(float));
  }
  // Copies share the tables (the same weights).
  const kernels::BitPlaneMatrix copy = t.m;
  EXPECT_EQ(kernels::int8_width(copy, 6).bytes, seen[0]);
  EXPECT_THROW(kernels::int8_width(t.m, 1), Error);
}

// The AVX2 kernel sums each 256-column block in integers and scales it in double in the
// scalar reference's order, so its result is the reference's to the bit, not merely close.
TEST(BitPlaneKernels, Avx2Int8KernelIsBitIdenticalToItsScalarReference) {
  kernels::set_isa(kernels::Isa::Avx2);
  if (kernels::active_isa() != kernels::Isa::Avx2) {
    kernels::set_isa(kernels::Isa::Avx512);
    GTEST_SKIP() << "this CPU has no AVX2";
  }
  kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
  for (auto [R, C] : {std::pair<int64_t, int64_t>{3, 1}, {5, 63}, {4, 65}, {6, 255}, {3, 257},
                      {7, 300}, {5, 1000}, {2, 4096}, {3, 4100}}) {
    TestMatrix t(R, C, 1, 8);
    kernels::prepare_int8(t.m);
    auto x = random_row(int(C), 777 + int(C), false);
    kernels::Int8Activations a;
    kernels::quantize_activations(x.data(), C, a);
    for (int b = 1; b <= 8; ++b) {
      std::vector<float> y(static_cast<size_t>(R));
      kernels::bitplane_matmul(t.m, b, x.data(), 1, y.data());
      for (int64_t r = 0; r < R; ++r)
        EXPECT_EQ(y[size_t(r)], kernels::bitplane_dot_int8_scalar(t.m, b, r, a)) << R << "x" << C << " bits " << b;
    }
  }
  kernels::set_isa(kernels::Isa::Avx512);
}

// q, k and v (or gate and up) through one call: x quantized once, one thread team over all
// rows, each thread going on to the next matrix without waiting. Each output must be the
// one a product of its own gives, bit for bit: row counts that are not whole steps of the
// AVX-512 kernel (4 rows at 2..3 bits, 2 at 4..6), widths 1..8, every ISA; and matrices of
// different widths of input fall back to one product each.
TEST(BitPlaneKernels, ManyMatricesOfOneInputEqualOneProductEach) {
  const size_t bound = kernels::min_parallel_bytes();
  kernels::set_min_parallel_bytes(0);  // these small matrices would run on one thread
  const int threads_before = omp_get_max_threads();
  // One thread: the loop outside any parallel region; two: a team of two.
  for (int threads : {1, 2}) {
    for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
      omp_set_num_threads(threads);
      kernels::set_isa(isa);
      kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
      for (int64_t C : {int64_t(70), int64_t(300)}) {
        TestMatrix a(5, C, 1, 8), b(9, C, 1, 8), c(38, C, 1, 8), other(6, C + 1, 1, 8);
        for (auto* t : {&a, &b, &c, &other}) kernels::prepare_int8(t->m);
        const auto x = random_row(int(C + 1), 99 + int(C), false);
        for (int bits = 1; bits <= 8; ++bits) {
          auto check = [&](const std::vector<TestMatrix*>& ts) {
            std::vector<const kernels::BitPlaneMatrix*> ms;
            std::vector<std::vector<float>> together, alone;
            for (TestMatrix* t : ts) {
              ms.push_back(&t->m);
              together.emplace_back(size_t(t->m.rows), -1.f), alone.emplace_back(size_t(t->m.rows), -2.f);
            }
            std::vector<float*> ys;
            for (auto& y : together) ys.push_back(y.data());
            kernels::bitplane_matvec_many(ms, bits, x.data(), ys);
            for (size_t i = 0; i < ts.size(); ++i) {
              kernels::bitplane_matmul(ts[i]->m, bits, x.data(), 1, alone[i].data());
              for (size_t r = 0; r < alone[i].size(); ++r)
                ASSERT_EQ(together[i][r], alone[i][r])
                    << kernels::isa_name(kernels::active_isa()) << " threads " << threads << " C " << C << " bits "
                    << bits << " matrix " << i << " row " << r;
            }
          };
          check({&a, &b, &c});
          check({&c, &other});  // 300 and 301 columns: one product each
        }
      }
    }
  }
  omp_set_num_threads(threads_before);
  kernels::set_min_parallel_bytes(bound);
  kernels::set_isa(kernels::Isa::Avx512);
  kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
  TestMatrix t(4, 16, 2, 4);
  kernels::prepare_int8(t.m);
  std::vector<float> y(4);
  const std::vector<const kernels::BitPlaneMatrix*> one{&t.m};
  EXPECT_THROW(kernels::bitplane_matvec_many(one, 2, t.rows[0].data(), std::vector<float*>{}), Error);
  EXPECT_THROW(kernels::bitplane_matvec_many(one, 5, t.rows[0].data(), std::vector<float*>{y.data()}), Error);
}

TEST(BitPlaneKernels, GroupedTablesMatchScalarOnEveryIsa) {
  const int64_t R = 5, C = 300, G = 64; // 5 groups, the last one partial
  std::vector<uint8_t> codes(size_t(R * C));
  std::vector<uint16_t> table;
  std::vector<std::vector<float>> rows;
  for (int64_t r = 0; r < R; ++r) {
    rows.push_back(random_row(int(C), uint32_t(500 + r)));
    auto q = quant::quantize_row_uniform(rows.back().data(), int(C), 3, int(G));
    std::copy(q.codes.begin(), q.codes.end(), codes.begin() + r * C);
    for (float v : q.tables[0])
      table.push_back(f32_to_f16(v));
  }
  kernels::BitPlaneMatrix m;
  m.rows = R, m.cols = C, m.bits_min = m.bits_max = 3, m.group_size = G;
  m.plane_stride = kernels::BitPlaneMatrix::stride_for(C);
  std::vector<uint8_t> planes(size_t(3 * R * m.plane_stride));
  quant::pack_bitplanes(codes.data(), R, C, 3, planes.data());
  m.planes = planes.data();
  m.tables = {table.data()};
  kernels::prepare_int8(m);
  EXPECT_FALSE(m.int8) << "grouped tables keep to the exact kernels";
  auto x = random_row(int(C), 8, false);
  std::vector<float> deq(static_cast<size_t>(C)), y(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    kernels::bitplane_dequant_row(m, 3, r, deq.data());
    for (int64_t j = 0; j < C; ++j) { // uniform at 3 bits: error at most half a
                                      // step of the group's grid
      const float *g0 = rows[size_t(r)].data() + (j / G) * G;
      const int64_t len = std::min(G, C - (j / G) * G);
      const float step =
          (*std::max_element(g0, g0 + len) - *std::min_element(g0, g0 + len)) /
          7;
      EXPECT_NEAR(deq[size_t(j)], rows[size_t(r)][size_t(j)],
                  0.5 * step + 1e-3 * std::fabs(rows[size_t(r)][size_t(j)]) +
                      1e-6);
    }
    float ref = kernels::bitplane_dot_scalar(m, 3, r, x.data());
    EXPECT_NEAR(kernels::dot_scalar(DType::F32, deq.data(), x.data(), C), ref,
                1e-4 * (1 + std::fabs(ref)));
    for (auto isa :
         {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon}) {
      kernels::set_isa(isa);
      kernels::bitplane_matmul(m, 3, x.data(), 1, y.data());
      EXPECT_NEAR(y[size_t(r)], ref, 1e-4 * (1 + std::fabs(ref)))
          << kernels::isa_name(kernels::active_isa());
    }
    kernels::set_isa(kernels::Isa::Avx512);
  }
}

TEST(BitPlaneKernels, PlanesHoldTheTopBitsOfEachCode) {
  TestMatrix t(4, 70, 2, 6);
  // Reading b planes gives codes whose (b+1)-bit extension shares their top b
  // bits.
  for (int64_t r = 0; r < 4; ++r)
    for (int b = 2; b < 6; ++b) {
      for (int j = 0; j < 70; ++j) {
        int code_b = 0, code_b1 = 0;
        for (int k = 0; k <= b; ++k) {
          int bit = (t.m.plane(k, r)[j >> 3] >> (j & 7)) & 1;
          if (k < b)
            code_b = code_b << 1 | bit;
          code_b1 = code_b1 << 1 | bit;
        }
        EXPECT_EQ(code_b1 >> 1, code_b);
      }
    }
}

TEST(DenseSparse, BeatsAnyPrecWithoutOutliersAtTheSameWidth) {
  const int64_t R = 16, C = 512;
  std::vector<float> W;
  for (int64_t r = 0; r < R; ++r) {
    auto row = random_row(int(C), uint32_t(300 + r)); // Student-t: heavy tails
    W.insert(W.end(), row.begin(), row.end());
  }
  auto s = random_sens(int(C), 77);
  auto sp = quant::select_outliers(W.data(), R, C, s.data(), 0.0045);
  EXPECT_EQ(sp.rowptr.back(), int32_t(std::llround(0.0045 * R * C)));
  for (int b : {2, 3, 4}) {
    double dense_err = 0, dns_err = 0;
    for (int64_t r = 0; r < R; ++r) {
      const float *w = &W[size_t(r * C)];
      auto plain = quant::quantize_row_anyprec(w, s.data(), int(C), b, b, 1);
      dense_err += quant::weighted_error(w, s.data(), int(C), plain, b);
      std::vector<float> rs = s;
      std::vector<bool> outlier(size_t(C), false);
      for (int32_t i = sp.rowptr[size_t(r)]; i < sp.rowptr[size_t(r + 1)]; ++i)
        rs[size_t(sp.col[size_t(i)])] = 0,
        outlier[size_t(sp.col[size_t(i)])] = true;
      auto q = quant::quantize_row_anyprec(w, rs.data(), int(C), b, b, 1);
      // outliers are exact, so only the dense positions contribute error
      dns_err += quant::weighted_error(w, rs.data(), int(C), q, b);
    }
    EXPECT_LT(dns_err, dense_err) << b << " bits";
  }
  EXPECT_NEAR(quant::sparse_bits_per_weight(sp.col.size(), R, C),
              (double(sp.col.size()) * 48 + 17 * 32) / (R * C), 1e-12);
}

TEST(DenseSparse, KernelsReproduceOutliersExactly) {
  TestMatrix t(6, 130, 2, 5);
  std::vector<int32_t> rowptr = {0, 1, 1, 3, 3, 4, 5}, col = {0, 5, 129, 64, 7};
  std::vector<uint16_t> val = {f32_to_f16(3.5f), f32_to_f16(-2.f),
                               f32_to_f16(1.25f), f32_to_f16(7.f),
                               f32_to_f16(-0.5f)};
  t.m.sp_rowptr = rowptr.data(), t.m.sp_col = col.data(),
  t.m.sp_val = val.data(), t.m.nnz = 5;
  kernels::prepare_int8(t.m);
  auto x = random_row(130, 31, false);
  for (int b = 2; b <= 5; ++b) {
    std::vector<float> deq(130), y(6), yi(6);
    kernels::bitplane_dequant_row(t.m, b, 2, deq.data());
    EXPECT_EQ(deq[5], -2.f);
    EXPECT_EQ(deq[129], 1.25f);
    kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Exact);
    kernels::bitplane_matmul(t.m, b, x.data(), 1, y.data());
    kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
    kernels::bitplane_matmul(t.m, b, x.data(), 1, yi.data());
    for (int64_t r = 0; r < 6; ++r) {
      kernels::bitplane_dequant_row(t.m, b, r, deq.data());
      float ref = kernels::dot_scalar(DType::F32, deq.data(), x.data(), 130);
      EXPECT_NEAR(y[size_t(r)], ref, 1e-4 * (1 + std::fabs(ref)));
      EXPECT_NEAR(yi[size_t(r)], ref, 0.05 * (1 + std::fabs(ref)));
    }
  }
}

// Mean negative log-likelihood of `ids` under `m` at `bits` (0: the model's own weights),
// and the logits of every position.
double mean_nll(const Model &m, const std::vector<int> &ids, int bits,
                std::vector<float> *all_logits = nullptr) {
  Transformer tf(m);
  KVCache cache(m.config, int(ids.size()), false);
  std::vector<float> logits(ids.size() * size_t(m.config.vocab_size));
  tf.forward(ids.data(), int(ids.size()), cache, logits.data(), true, bits);
  double s = 0;
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    const float *l = &logits[t * size_t(m.config.vocab_size)];
    float mx = *std::max_element(l, l + m.config.vocab_size);
    double z = 0;
    for (int v = 0; v < m.config.vocab_size; ++v)
      z += std::exp(double(l[v] - mx));
    s += std::log(z) + mx - l[ids[t + 1]];
  }
  if (all_logits) *all_logits = std::move(logits);
  return s / double(ids.size() - 1);
}

class QuantizedModel : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    src_ = load_model(test::source_dir() + "/models/pmpd-tiny").release();
    quant::QuantizeOptions opt;
    quant::quantize_model(*src_, dir_->file("q.gguf"), opt);
    q_ = load_model(dir_->file("q.gguf")).release();
  }
  static void TearDownTestSuite() {
    delete q_;
    delete src_;
    delete dir_;
  }
  static test::TempDir *dir_;
  static Model *src_, *q_;
};
test::TempDir *QuantizedModel::dir_;
Model *QuantizedModel::src_;
Model *QuantizedModel::q_;

TEST_F(QuantizedModel, FileHoldsEveryWidthAndLoadsMapped) {
  EXPECT_EQ(q_->quant.method, "anyprec");
  EXPECT_EQ(q_->quant.bits_min, 2);
  EXPECT_EQ(q_->quant.bits_max, 8);
  EXPECT_EQ(q_->quant.quantized_tensors, 7 * q_->config.n_layers);
  ASSERT_TRUE(q_->layers[0].q.q);
  EXPECT_EQ(q_->token_embd.dtype,
            src_->token_embd.dtype); // embeddings stay 16-bit
  GgufFile g = read_gguf(dir_->file("q.gguf"));
  ASSERT_TRUE(g.find("pmpd.quant.tensor_kinds"));
  EXPECT_EQ(g.find("pmpd.quant.tensor_kinds")->as_array().size(),
            size_t(q_->quant.quantized_tensors));
  EXPECT_EQ(g.find("pmpd.quant.tensor_kinds")->as_array()[0].as_string(),
            "blk.0.attn_q.weight=bitplanes");
}

TEST_F(QuantizedModel, WidthOrdersQualityAndEightBitsIsCloseToSixteen) {
  Tokenizer tok(*src_->tokenizer);
  std::vector<int> ids = tok.encode(quant::builtin_calibration_text(), true);
  auto nll = [&](const Model &m, int bits) { return mean_nll(m, ids, bits); };
  double ref = nll(*src_, 0), n2 = nll(*q_, 2), n3 = nll(*q_, 3),
         n8 = nll(*q_, 8);
  EXPECT_GT(n2, n3);
  EXPECT_GT(n3, n8 - 1e-3);
  EXPECT_LT(std::fabs(std::exp(n8) / std::exp(ref) - 1), 0.01)
      << "8-bit perplexity within 1% of 16-bit";
}

// --quantize-head: the tied head of pmpd-tiny becomes its own nested tensor (the embedding
// stays 16-bit) and runs at each step's width; by default it stays 16-bit.
TEST_F(QuantizedModel, HeadIsQuantizedOnlyOnRequestAndFollowsTheWidth) {
  ASSERT_TRUE(src_->config.tied_embeddings);
  EXPECT_FALSE(q_->output.q) << "the head stays 16-bit by default";
  quant::QuantizeOptions opt;
  opt.quantize_head = true;
  quant::quantize_model(*src_, dir_->file("head.gguf"), opt);
  auto h = load_model(dir_->file("head.gguf"));
  ASSERT_TRUE(h->output.q);
  EXPECT_FALSE(h->config.tied_embeddings);
  EXPECT_EQ(h->output.q->rows, src_->config.vocab_size);
  EXPECT_EQ(h->token_embd.dtype, src_->token_embd.dtype);
  EXPECT_EQ(h->quant.quantized_tensors, 7 * h->config.n_layers + 1);
  GgufFile g = read_gguf(dir_->file("head.gguf"));
  EXPECT_EQ(g.find("pmpd.quant.tensor_kinds")->as_array().back().as_string(),
            "output.weight=bitplanes");
  // The layers are the same as q_'s (same seed, same calibration): only the head differs,
  // and its error grows as the width falls.
  Tokenizer tok(*src_->tokenizer);
  std::vector<int> ids = tok.encode(quant::builtin_calibration_text(), true);
  ids.resize(std::min<size_t>(ids.size(), 96));
  auto head_error = [&](int bits) {
    std::vector<float> a, b;
    mean_nll(*q_, ids, bits, &a);
    mean_nll(*h, ids, bits, &b);
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size(); ++i)
      d += (a[i] - b[i]) * (a[i] - b[i]), n += a[i] * a[i];
    return std::sqrt(d / n);
  };
  const double e8 = head_error(8), e3 = head_error(3), e2 = head_error(2);
  EXPECT_GT(e8, 0) << "the head is quantized";
  EXPECT_LT(e8, 0.01);
  EXPECT_GT(e3, 2 * e8);
  EXPECT_GT(e2, e3);
  const double ref = mean_nll(*src_, ids, 0), n8 = mean_nll(*h, ids, 8);
  EXPECT_LT(std::fabs(std::exp(n8) / std::exp(ref) - 1), 0.02)
      << "8-bit perplexity with the head quantized within 2% of 16-bit";
}

TEST_F(QuantizedModel, QuantizingIsDeterministic) {
  quant::QuantizeOptions opt;
  quant::quantize_model(*src_, dir_->file("again.gguf"), opt);
  EXPECT_EQ(test::read_bytes(dir_->file("again.gguf")),
            test::read_bytes(dir_->file("q.gguf")));
}

TEST_F(QuantizedModel, BaselinesLoadAndDnsBeatsPlainAnyPrec) {
  quant::QuantizeOptions dns;
  dns.method = "dns";
  quant::quantize_model(*src_, dir_->file("dns.gguf"), dns);
  quant::QuantizeOptions uni;
  uni.method = "uniform", uni.bits_min = uni.bits_max = 3;
  quant::quantize_model(*src_, dir_->file("u3.gguf"), uni);
  auto d = load_model(dir_->file("dns.gguf"));
  auto u = load_model(dir_->file("u3.gguf"));
  EXPECT_EQ(d->quant.method, "dns");
  EXPECT_GT(d->layers[0].q.q->nnz, 0);
  EXPECT_EQ(u->quant.bits_min, 3);
  EXPECT_EQ(u->quant.group_size, 128);
  EXPECT_EQ(u->layers[0].down.q->groups(),
            (src_->config.hidden_dim + 127) / 128);
  // Weighted reconstruction error of one layer: dns < anyprec at 3 bits.
  const Linear &a = q_->layers[1].up;
  const Linear &b = d->layers[1].up;
  const Linear &o = src_->layers[1].up;
  double ea = 0, eb = 0;
  std::vector<float> ra(static_cast<size_t>(o.in())), rb(ra.size()),
      ro(ra.size());
  for (int64_t r = 0; r < o.out(); ++r) {
    to_f32(o.w.dtype, o.w.row_ptr(r), ro.data(), ro.size());
    kernels::bitplane_dequant_row(*a.q, 3, r, ra.data());
    kernels::bitplane_dequant_row(*b.q, 3, r, rb.data());
    for (size_t j = 0; j < ro.size(); ++j)
      ea += (ra[j] - ro[j]) * (ra[j] - ro[j]),
          eb += (rb[j] - ro[j]) * (rb[j] - ro[j]);
  }
  EXPECT_LT(eb, ea);
}

TEST_F(QuantizedModel, RejectsWidthsOutsideTheFile) {
  Transformer tf(*q_);
  KVCache cache(q_->config, 8, true);
  std::vector<float> logits(size_t(q_->config.vocab_size));
  int tok = 5;
  EXPECT_THROW(tf.forward(&tok, 1, cache, logits.data(), false, 1), Error);
  EXPECT_THROW(tf.forward(&tok, 1, cache, logits.data(), false, 9), Error);
}

TEST_F(QuantizedModel, CorruptQuantizedFilesGiveClearErrors) {
  // Rewrite the file with one table or one plane missing / mis-shaped, via the
  // GGUF layer.
  GgufFile g = read_gguf(dir_->file("q.gguf"));
  auto rewrite =
      [&](const std::string &out,
          const std::function<bool(const std::string &, TensorView &)> &edit,
          const std::function<void(GgufWriter &)> &meta = {}) {
        GgufWriter w;
        for (auto &[k, v] : g.meta) {
          if (k == "general.alignment")
            continue;
          if (meta && (k == "pmpd.quant.bits_max"))
            continue;
          if (v.type == GgufType::String)
            w.set_string(k, v.as_string());
          else if (v.type == GgufType::U32)
            w.set_u32(k, uint32_t(v.as_int()));
          else if (v.type == GgufType::F32)
            w.set_f32(k, float(v.as_float()));
          else if (v.type == GgufType::Bool)
            w.set_bool(k, std::get<bool>(v.v));
          else if (v.type == GgufType::Array &&
                   v.elem_type == GgufType::String) {
            std::vector<std::string> s;
            for (auto &e : v.as_array())
              s.push_back(e.as_string());
            w.set_array_string(k, s);
          } else if (v.type == GgufType::Array &&
                     v.elem_type == GgufType::F32) {
            std::vector<float> s;
            for (auto &e : v.as_array())
              s.push_back(float(e.as_float()));
            w.set_array_f32(k, s);
          } else if (v.type == GgufType::Array &&
                     v.elem_type == GgufType::I32) {
            std::vector<int32_t> s;
            for (auto &e : v.as_array())
              s.push_back(int32_t(e.as_int()));
            w.set_array_i32(k, s);
          }
        }
        if (meta)
          meta(w);
        for (auto &[name, t] : g.tensors.tensors) {
          TensorView copy = t;
          if (edit(name, copy))
            w.add_tensor(copy.name, copy.dtype, copy.shape, copy.data);
        }
        w.write(dir_->file(out));
        return dir_->file(out);
      };
  auto expect_error = [](const std::string &path, const std::string &fragment) {
    try {
      load_model(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << e.what();
    }
  };
  expect_error(rewrite("no_table.gguf",
                       [](const std::string &n, TensorView &) {
                         return n != "blk.1.ffn_up.weight.lut5";
                       }),
               "blk.1.ffn_up.weight.lut5 missing");
  expect_error(rewrite("bad_table.gguf",
                       [](const std::string &n, TensorView &t) {
                         if (n == "blk.0.attn_k.weight.lut3")
                           t.shape = {t.shape[0] / 2, 16};
                         return true;
                       }),
               "blk.0.attn_k.weight.lut3");
  expect_error(rewrite("no_plane.gguf",
                       [](const std::string &n, TensorView &t) {
                         if (n == "blk.2.attn_v.weight.planes")
                           t.shape[0] -= 1;
                         return true;
                       }),
               "missing or extra plane");
  expect_error(rewrite(
                   "bad_bits.gguf",
                   [](const std::string &, TensorView &) { return true; },
                   [](GgufWriter &w) { w.set_u32("pmpd.quant.bits_max", 12); }),
               "bit range");
}

} // namespace
} // namespace pmpd

namespace pmpd {
namespace {

// A resumable GGUF write keeps the tensors an interrupted write finished (their
// producers are not called again) and starts over when the header on disk differs.
TEST(GgufWriter, ResumesAnInterruptedWriteAndRestartsOnAnotherHeader) {
  test::TempDir dir;
  const std::string path = dir.file("r.gguf");
  std::vector<int> calls(3, 0);
  bool fail_on_last = true;
  auto make = [&](uint32_t version) {
    GgufWriter w;
    w.set_u32("test.version", version);
    for (int i = 0; i < 3; ++i)
      w.add_tensor_lazy("t" + std::to_string(i), DType::F32, {4}, [&, i](uint8_t* dst) {
        ++calls[size_t(i)];
        if (i == 2 && fail_on_last) throw std::runtime_error("interrupted");
        std::vector<float> v(4, float(i + 1));
        std::memcpy(dst, v.data(), 16);
      });
    w.set_resumable("source v1");
    return w;
  };
  EXPECT_THROW(make(1).write(path), std::runtime_error);  // dies producing t2
  EXPECT_FALSE(std::filesystem::exists(path));
  fail_on_last = false;
  make(1).write(path);
  EXPECT_EQ(calls, (std::vector<int>{1, 1, 2}));  // t0 and t1 were kept
  GgufFile g = read_gguf(path);
  auto value = [](const GgufFile& f, int i, int k) {
    return static_cast<const float*>(f.tensors.find("t" + std::to_string(i))->data)[k];
  };
  for (int i = 0; i < 3; ++i) EXPECT_EQ(value(g, i, 0), float(i + 1));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp.journal"));

  fail_on_last = true;
  EXPECT_THROW(make(1).write(path), std::runtime_error);
  fail_on_last = false;
  make(2).write(path);  // other metadata: nothing on disk is reused
  EXPECT_EQ(calls, (std::vector<int>{3, 3, 4}));
  EXPECT_EQ(value(read_gguf(path), 1, 1), 2.f);
}

}  // namespace
}  // namespace pmpd
