// The CUDA backend against the CPU reference: every kernel on random shapes, the whole
// forward pass on each architecture, greedy tokens on the shipped model at several
// widths. Without a GPU (CI) every test skips with the reason; tools/gpu/run.sh runs
// them on the GPU machine.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <random>
#include <tuple>

#include "calib/branching.h"
#include "decode/generator.h"
#include "decode/sampler.h"
#include "kernels/cpu/bitplane.h"
#include "kernels/cpu/ops.h"
#include "model/cuda_model.h"
#include "model/synthetic.h"
#include "sched/scheduler.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

#ifdef PMPD_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_array.h"
#include "model/cublas_loader.h"
#endif

namespace pmpd {
namespace {

#define SKIP_WITHOUT_GPU()                                                                            \
  do {                                                                                                \
    if (!cuda::compiled()) GTEST_SKIP() << "built without CUDA";                                      \
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda::device_name();         \
  } while (0)

TEST(Cuda, ReportsWhetherABackendExists) {
  // Runs everywhere: the stub and the real backend answer without crashing.
  EXPECT_GE(cuda::device_count(), 0);
  EXPECT_FALSE(cuda::device_name().empty());
  if (!cuda::compiled()) {
    auto m = make_synthetic_model(synthetic_config("tiny"), {});
    EXPECT_THROW(Transformer(*m, Backend::CUDA), Error);
  }
}

TEST(Cuda, BackendNamesParse) {
  EXPECT_EQ(parse_backend("cpu"), Backend::CPU);
  EXPECT_EQ(parse_backend("cuda"), Backend::CUDA);
  EXPECT_THROW(parse_backend("tpu"), Error);
}

#ifdef PMPD_HAVE_CUDA
// Read during static initialisation, before any test: a linked library is mapped by then.
const bool cublas_mapped_at_start = cuda::cublas_mapped();

TEST(Cuda, CublasIsOpenedOnFirstUseNotAtStart) {
  // Runs without a GPU too: opening cuBLAS needs its files, not a device.
  EXPECT_FALSE(cublas_mapped_at_start) << "cuBLAS linked again? Every start would pay its initialisation";
  const bool before = cuda::cublas_mapped();
  auto m = make_synthetic_model(synthetic_config("tiny"), {});
  Transformer cpu(*m, Backend::CPU);
  KVCache cache(m->config, 8);
  const int tokens[3] = {1, 2, 3};
  std::vector<float> logits(size_t(m->config.vocab_size));
  cpu.forward(tokens, 3, cache, logits.data());
  // (ctest runs each test in a process of its own, where nothing opened it before.)
  if (!before) {
    EXPECT_FALSE(cuda::cublas_mapped()) << "a CPU forward pass opened cuBLAS";
  }
  try {
    cuda::load_cublas("libpmpd-no-such-cublas.so");
    ADD_FAILURE() << "a missing library loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("libpmpd-no-such-cublas.so"), std::string::npos) << e.what();
  }
  // The real one opens (the toolkit is installed wherever this was built) and is then mapped:
  // the check above can see it.
  EXPECT_NE(cuda::cublas().gemm_ex, nullptr);
  EXPECT_TRUE(cuda::cublas_mapped());
}
#endif

#ifdef PMPD_HAVE_CUDA

template <typename T>
struct Dev {
  T* p = nullptr;
  explicit Dev(size_t n) { EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess); }
  Dev(const std::vector<T>& v) : Dev(v.size()) { cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice); }
  ~Dev() { cudaFree(p); }
  std::vector<T> get(size_t n) const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

// A random nested matrix on the host (with DNS outliers when nnz_per_row > 0).
struct HostMatrix {
  kernels::BitPlaneMatrix m;
  std::vector<uint8_t> planes;
  std::vector<std::vector<uint16_t>> tables;
  std::vector<int32_t> rowptr, col;
  std::vector<uint16_t> val;
};

HostMatrix random_matrix(int64_t rows, int64_t cols, int lo, int hi, int nnz_per_row, uint32_t seed) {
  HostMatrix h;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  h.m.rows = rows, h.m.cols = cols, h.m.bits_min = lo, h.m.bits_max = hi;
  h.m.plane_stride = kernels::BitPlaneMatrix::stride_for(cols);
  h.planes.resize(size_t(hi) * size_t(rows) * size_t(h.m.plane_stride));
  for (auto& b : h.planes) b = uint8_t(rng());
  for (int k = 0; k < hi; ++k)  // padding columns hold code 0
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = cols; j < h.m.plane_stride * 8; ++j)
        h.planes[(size_t(k) * rows + size_t(r)) * size_t(h.m.plane_stride) + size_t(j >> 3)] &= uint8_t(~(1u << (j & 7)));
  h.m.planes = h.planes.data();
  for (int b = lo; b <= hi; ++b) {
    std::vector<uint16_t> t(size_t(rows) << b);
    for (auto& v : t) v = f32_to_f16(u(rng));
    h.tables.push_back(std::move(t));
  }
  for (auto& t : h.tables) h.m.tables.push_back(t.data());
  if (nnz_per_row > 0) {
    h.rowptr.push_back(0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int i = 0; i < nnz_per_row; ++i) h.col.push_back(int32_t((r * 7 + i * 13) % cols)), h.val.push_back(f32_to_f16(4.f * u(rng)));
      h.rowptr.push_back(int32_t(h.col.size()));
    }
    h.m.sp_rowptr = h.rowptr.data(), h.m.sp_col = h.col.data(), h.m.sp_val = h.val.data();
    h.m.nnz = int64_t(h.col.size());
  }
  return h;
}

struct DeviceMatrix {
  Dev<uint8_t> planes;
  std::vector<std::unique_ptr<Dev<uint16_t>>> tables;
  Dev<int32_t> rowptr, col;
  Dev<uint16_t> val;
  std::unique_ptr<Dev<uint32_t>> tiled;
  cuda::DeviceBitPlanes d;
  // tiles: also make the tile layout, so widths 2..4 run on the tensor-core GEMV;
  // interleave: tiles with the row halves interleaved (DeviceBitPlanes::tiles_interleave).
  explicit DeviceMatrix(const HostMatrix& h, bool tiles = false, int64_t interleave = 0)
      : planes(h.planes), rowptr(h.rowptr), col(h.col), val(h.val) {
    d.rows = h.m.rows, d.cols = h.m.cols, d.plane_stride = h.m.plane_stride;
    d.bits_min = h.m.bits_min, d.bits_max = h.m.bits_max;
    d.planes = planes.p;
    for (int b = h.m.bits_min; b <= h.m.bits_max; ++b) {
      tables.push_back(std::make_unique<Dev<uint16_t>>(h.tables[size_t(b - h.m.bits_min)]));
      d.tables[b] = tables.back()->p;
    }
    if (h.m.nnz) d.sp_rowptr = rowptr.p, d.sp_col = col.p, d.sp_val = val.p, d.nnz = h.m.nnz;
    const int planes_tiled = std::min(cuda::kTiledPlanesMax, h.m.bits_max);
    if (tiles && planes_tiled >= h.m.bits_min) {
      d.tiles_interleave = interleave;
      tiled = std::make_unique<Dev<uint32_t>>(size_t(cuda::tiled_words(d, planes_tiled)));
      cuda::tile_bitplanes(d, planes_tiled, tiled->p, nullptr);
      d.tiled = tiled->p, d.tiled_planes = planes_tiled;
    }
  }
};

TEST(Cuda, BitPlaneGemvMatchesCpuAtEveryWidth) {
  SKIP_WITHOUT_GPU();
  struct ResetOneBlock {  // back to the defaults however the test ends
    int ahead = cuda::set_pair_lut_stream_ahead(1);
    ~ResetOneBlock() {
      cuda::set_pair_lut_one_block_cols(-1), cuda::set_pair_lut_stream(true), cuda::set_pair_lut_stream_rounds_3bit(1);
      cuda::set_pair_lut_stream_ahead(ahead), cuda::set_pair_lut_roll(true), cuda::set_pair_lut_stream_waves(true, 0);
    }
  } reset;
  // 3900 columns: 16 chunk pairs, the streaming GEMV's shapes (at 3 bits whatever the tasks a
  // block, below); 6400 x 3900 (2..3 bits only): 400 tasks, 3 or 4 a block, so that every item
  // of the streaming GEMV's prefetch ring is loaded inside its loop; 4300 x 2000: 8 chunk pairs,
  // two groups of warps, one with two tasks of a block and the other with one (1000 and 2048
  // columns: 4 and 8 chunk pairs, one task a block); 4300 x 2500 (2..3 bits): 10 chunk pairs,
  // one group, 6 warps idle. 700 x 3900 at 4, 5, 6 and 8 bits: 44 tasks, on the rolling streaming
  // GEMV over 3 blocks too (15, 15 and 14 tasks: every table slot rebuilt three times or more).
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 64},      {7, 100},     {37, 1000},
                                                           {300, 4096 + 17}, {513, 2048}, {45, 3900},
                                                           {6400, 3900}, {4300, 2000}, {4300, 2500},
                                                           {700, 3900}};
  uint32_t seed = 1;
  for (auto [rows, cols] : shapes) {
    for (int nnz : {0, 3}) {
      HostMatrix h = random_matrix(rows, cols, 2, 8, nnz, seed++);
      DeviceMatrix dm(h);
      std::mt19937 rng(seed);
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      std::vector<float> x(static_cast<size_t>(cols));
      for (auto& v : x) v = u(rng);
      Dev<float> dx(x), dy(static_cast<size_t>(rows));
      DeviceMatrix tiled(h, true);
      // mode 0: the bit-plane GEMV; 1: the tensor-core GEMV (pair tables at 2..4 bits,
      // single-weight tables at 5..8; at 2..3 bits and up to 4096 columns the streaming
      // GEMV), which rounds x to f16 (|error| <= 2^-11 sum |w x|); 2: 2..3 bits on the task loop
      // as one block an SM; 3: 2..3 bits on the task loop as two blocks an SM; 4: the streaming
      // GEMV with two items in flight a warp (mode 1: one); at 4, 5, 6 and 8 bits mode 1 is the
      // rolling streaming GEMV where the matrix has 16 chunk pairs, 5 the same over 3 blocks, 6 the
      // task loop (7 bits: always the task loop); 7: the streaming GEMV at 2..3 bits in waves of
      // blocks of at most 2 tasks (6400 x 3900: 264 blocks, 2 waves; 4300 x 2000: the same grid
      // over groups of warps), as an LM head whose tables do not fit runs
      for (int b = 2; b <= (rows * cols > 10'000'000 ? 3 : 8); ++b) for (int mode : {0, 1, 2, 3, 4, 5, 6, 7}) {
        if ((((mode >= 2 && mode <= 4) || mode == 7) && b > 3) || ((mode == 5 || mode == 6) && b < 4)) continue;
        cuda::set_pair_lut_stream_waves(true, mode == 7 ? 2 : 0);
        cuda::set_pair_lut_roll(mode != 6, mode == 5 ? 3 : 0);
        cuda::set_pair_lut_stream_ahead(mode == 4 ? 2 : 1);
        const bool tc = mode > 0, f16_x = tc && b <= cuda::kTiledPlanesMax;
        cuda::set_pair_lut_one_block_cols(mode == 2 ? 1 << 30 : 0);
        cuda::set_pair_lut_stream(mode == 1 || mode >= 4 || b >= 4), cuda::set_pair_lut_stream_rounds_3bit(1);
        cuda::bitplane_gemv(tc ? tiled.d : dm.d, b, dx.p, dy.p, nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        if (tc && cols == 3900) {  // 16 chunk pairs: the kernel each mode is for ran, not a fallback
          using K = cuda::PairLutKernel;
          const K want = b >= 4 ? (nnz == 0 && mode != 6 && b != 7 ? K::Rolling : K::TaskLoop)
                                : (mode == 1 || mode == 4 || mode == 7 ? K::Streaming : K::TaskLoop);
          EXPECT_EQ(int(cuda::pair_lut_last_kernel()), int(want)) << rows << "x" << cols << " nnz " << nnz << " bits " << b
                                                                  << " mode " << mode;
        }
        std::vector<float> y = dy.get(static_cast<size_t>(rows)), ref(static_cast<size_t>(rows));
        double scale = 0;
        for (int64_t r = 0; r < rows; ++r) {
          ref[size_t(r)] = kernels::bitplane_dot_scalar(h.m, b, r, x.data());
          std::vector<float> w(static_cast<size_t>(cols));
          kernels::bitplane_dequant_row(h.m, b, r, w.data());
          double s = 0;
          for (int64_t j = 0; j < cols; ++j) s += std::fabs(double(w[size_t(j)]) * x[size_t(j)]);
          scale = std::max(scale, s);
        }
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_NEAR(y[size_t(r)], ref[size_t(r)], (f16_x ? 6e-4 : 1e-5) * scale + 1e-6)
              << rows << "x" << cols << " nnz " << nnz << " bits " << b << " mode " << mode << " row " << r;
      }
    }
  }
}

// The prompt pass's multi-token GEMM from the tiles (pair_lut_gemm) against the CPU's rows:
// every width, 1 to 70 tokens (one and two token groups a block, partial groups, several token
// blocks), DNS outliers, interleaved tiles, and 11008 columns (x split over several launches
// that add up); and the GEMM tile (pair_lut_gemm_tile) at 2..3 bits, 64 tokens a block (70: a
// partial second tile), 43 chunk pairs at 11008 columns (an odd count for its two x buffers).
// Both round x to f16 as the GEMV does: |error| <= 2^-11 sum |w x|.
TEST(Cuda, TiledGemmMatchesCpuAtEveryWidth) {
  SKIP_WITHOUT_GPU();
  struct Shape {
    int64_t rows, cols, interleave;
    int nnz;
  };
  const std::vector<Shape> shapes = {{37, 1000, 0, 0}, {300, 4096 + 17, 0, 3}, {200, 640, 100, 2}, {24, 11008, 0, 1}};
  uint32_t seed = 40;
  for (const Shape& sh : shapes) {
    HostMatrix h = random_matrix(sh.rows, sh.cols, 2, 8, sh.nnz, seed++);
    DeviceMatrix tiled(h, true, sh.interleave);
    for (int n : {1, 3, 9, 24, 70}) {
      std::mt19937 rng(seed + uint32_t(n));
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      std::vector<float> x(size_t(n) * size_t(sh.cols));
      for (auto& v : x) v = u(rng);
      Dev<float> dx(x), dy(size_t(n) * size_t(sh.rows));
      Dev<uint16_t> scratch(size_t(cuda::tile_gemm_scratch_halves(n, sh.cols)));
      // kernel 0: the multi-token GEMM at every width; 1: the GEMM tile at 2..3 bits
      for (int b = 2; b <= 8; ++b) for (int kernel : {0, 1}) {
        if (kernel == 1 && b > 3) {
          EXPECT_FALSE(cuda::pair_lut_gemm_tile(tiled.d, b, dx.p, n, dy.p, scratch.p, nullptr));
          continue;
        }
        ASSERT_EQ(cudaMemset(dy.p, 0xff, sizeof(float) * size_t(n) * size_t(sh.rows)), cudaSuccess);  // NaN
        if (kernel == 0) ASSERT_TRUE(cuda::pair_lut_gemm(tiled.d, b, dx.p, n, dy.p, nullptr));
        else ASSERT_TRUE(cuda::pair_lut_gemm_tile(tiled.d, b, dx.p, n, dy.p, scratch.p, nullptr));
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<float> y = dy.get(size_t(n) * size_t(sh.rows));
        std::vector<float> w(size_t(sh.cols));
        for (int64_t r = 0; r < sh.rows; ++r) {
          kernels::bitplane_dequant_row(h.m, b, r, w.data());
          for (int t = 0; t < n; ++t) {
            const float* xt = x.data() + size_t(t) * size_t(sh.cols);
            double scale = 0;
            for (int64_t j = 0; j < sh.cols; ++j) scale += std::fabs(double(w[size_t(j)]) * xt[j]);
            ASSERT_NEAR(y[size_t(t) * size_t(sh.rows) + size_t(r)], kernels::bitplane_dot_scalar(h.m, b, r, xt),
                        6e-4 * scale + 1e-6)
                << sh.rows << "x" << sh.cols << " interleave " << sh.interleave << " nnz " << sh.nnz << " tokens " << n
                << " bits " << b << " kernel " << kernel << " row " << r << " token " << t;
          }
        }
      }
    }
  }
}

// Fills each vector with uniform values in [-2, 2) from one generator seeded `seed`.
void fill_uniform(uint32_t seed, std::initializer_list<std::vector<float>*> vectors) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (auto* v : vectors)
    for (auto& e : *v) e = u(rng);
}

// The operators fused into the GEMV's input and output against the CPU operators.
TEST(Cuda, FusedPrologueAndEpilogueMatchCpuOperators) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 70, cols = 3900;  // 16 chunk pairs: the streaming GEMV takes it
  HostMatrix h = random_matrix(rows, cols, 2, 4, 1, 5);
  cuda::set_pair_lut_stream_rounds_3bit(1);
  DeviceMatrix plain(h), tiled(h, true);
  std::vector<float> x(static_cast<size_t>(2 * cols)), nw(static_cast<size_t>(cols)), nb(nw.size()), bias(static_cast<size_t>(rows)),
      y0(static_cast<size_t>(rows));
  fill_uniform(3, {&x, &nw, &nb, &bias, &y0});
  Dev<float> dx(x), dw(nw), db(nb), dbias(bias);
  using P = cuda::GemvPrologue;
  for (P p : {P::None, P::RmsNorm, P::LayerNorm, P::GatedActivation, P::Activation}) {
    for (int act : {0, 1}) {
      std::vector<float> in(static_cast<size_t>(cols));
      switch (p) {
        case P::None: std::copy(x.begin(), x.begin() + cols, in.begin()); break;
        case P::RmsNorm: kernels::rmsnorm(in.data(), x.data(), nw.data(), int(cols), 1e-5f); break;
        case P::LayerNorm: kernels::layernorm(in.data(), x.data(), nw.data(), nb.data(), int(cols), 1e-5f); break;
        case P::Fragments: break;  // produced by a GEMV: MlpFragmentsEqualTheFusedPrologue
        case P::GatedActivation:
        case P::Activation:
          std::copy(x.begin(), x.begin() + cols, in.begin());
          act == 0 ? kernels::silu(in.data(), int(cols)) : kernels::gelu_tanh(in.data(), int(cols));
          if (p == P::GatedActivation)
            for (int64_t j = 0; j < cols; ++j) in[size_t(j)] *= x[size_t(cols + j)];
          break;
      }
      cuda::GemvInput gi;
      gi.x = dx.p, gi.prologue = p, gi.norm_w = dw.p, gi.norm_b = db.p, gi.eps = 1e-5f, gi.act = act;
      // the bit-plane GEMV; the tensor-core GEMV (x in f16): streaming, then the task loop
      for (int mode : {0, 1, 2}) {
        const bool tc = mode > 0;
        cuda::set_pair_lut_stream(mode != 2);
        Dev<float> dy(y0), dp(static_cast<size_t>(cols));
        cuda::GemvOutput go;
        go.y = dy.p, go.accumulate = true, go.bias = dbias.p;
        cuda::bitplane_gemv(tc ? tiled.d : plain.d, 3, gi, go, nullptr);
        cuda::apply_prologue(gi, cols, dp.p, nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<float> y = dy.get(static_cast<size_t>(rows)), staged = dp.get(static_cast<size_t>(cols));
        EXPECT_LT(test::rel_error(staged, in), 1e-5) << "prologue " << int(p) << " act " << act;
        std::vector<float> w(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
          const float want = y0[size_t(r)] + bias[size_t(r)] + kernels::bitplane_dot_scalar(h.m, 3, r, in.data());
          kernels::bitplane_dequant_row(h.m, 3, r, w.data());
          double scale = 0;
          for (int64_t j = 0; j < cols; ++j) scale += std::fabs(double(w[size_t(j)]) * in[size_t(j)]);
          ASSERT_NEAR(y[size_t(r)], want, 1e-4 * (1 + std::fabs(want)) + (tc ? 6e-4 * scale : 0.0))
              << "prologue " << int(p) << " row " << r << " mode " << mode;
        }
      }
    }
  }
  cuda::set_pair_lut_stream(true), cuda::set_pair_lut_stream_rounds_3bit(1);  // the defaults
}

// An MLP's first GEMV writing the second's input as f16 fragments (act(gate) * up from
// interleaved gate|up tiles, or act(up)) gives the second GEMV the same input, bit for bit,
// as computing it from the first's f32 output in every block; the first's output is
// unchanged by the interleaving. Odd sizes leave a partial last task and padded columns.
TEST(Cuda, MlpFragmentsEqualTheFusedPrologue) {
  SKIP_WITHOUT_GPU();
  // hidden % 8 != 0: a task with 4 gate rows; dim: 16 chunk pairs, the first GEMV streaming
  const int64_t dim = 3900, hidden = 100;
  cuda::set_pair_lut_stream_rounds_3bit(1);
  std::vector<float> x(static_cast<size_t>(dim)), bias(static_cast<size_t>(2 * hidden));
  fill_uniform(11, {&x, &bias});
  Dev<float> dx(x), dbias(bias);
  for (bool gated : {true, false}) {
    const int64_t first_rows = gated ? 2 * hidden : hidden;
    for (int nnz : {0, 2}) {
      HostMatrix h1 = random_matrix(first_rows, dim, 2, 5, nnz, 20 + nnz), h2 = random_matrix(dim, hidden, 2, 5, nnz, 30 + nnz);
      DeviceMatrix in_order(h1, true), mapped(h1, true, gated ? hidden : 0), down(h2, true), down_untiled(h2);
      // pair tables at 2..4 bits, single-weight tables at 5; streaming (at 4 and 5 bits the
      // rolling GEMV over 2 blocks: 13 gate|up tasks, its table slots rebuilt) and not
      for (int b = 2; b <= 5; ++b)
        for (int act : {0, 1})
          for (bool stream : {true, false}) {
            cuda::set_pair_lut_stream(stream), cuda::set_pair_lut_roll(stream, 2);
            Dev<float> y1(static_cast<size_t>(first_rows)), y1m(static_cast<size_t>(first_rows)),
                y2(static_cast<size_t>(dim)), y2f(static_cast<size_t>(dim));
            Dev<uint16_t> frag(static_cast<size_t>(cuda::fragment_halves(hidden)));
            ASSERT_EQ(cudaMemset(frag.p, 0, sizeof(uint16_t) * size_t(cuda::fragment_halves(hidden))), cudaSuccess);
            cuda::GemvInput plain;
            plain.x = dx.p;
            cuda::GemvOutput o1;
            o1.y = y1.p, o1.bias = dbias.p;
            cuda::bitplane_gemv(in_order.d, b, plain, o1, nullptr);
            cuda::GemvOutput o1m = o1;
            o1m.y = y1m.p, o1m.fragments = frag.p, o1m.act = act;
            o1m.fragment_op = gated ? cuda::GemvPrologue::GatedActivation : cuda::GemvPrologue::Activation;
            ASSERT_TRUE(cuda::pair_lut_serves(mapped.d, b) && cuda::pair_lut_serves(down.d, b));
            cuda::bitplane_gemv(mapped.d, b, plain, o1m, nullptr);
            cuda::GemvInput act_in;  // the down projection computing its input itself
            act_in.x = y1.p, act_in.act = act;
            act_in.prologue = gated ? cuda::GemvPrologue::GatedActivation : cuda::GemvPrologue::Activation;
            cuda::GemvOutput o2;
            o2.y = y2.p;
            cuda::bitplane_gemv(down.d, b, act_in, o2, nullptr);
            cuda::GemvInput frag_in;
            frag_in.prologue = cuda::GemvPrologue::Fragments, frag_in.fragments = frag.p;
            o2.y = y2f.p;
            cuda::bitplane_gemv(down.d, b, frag_in, o2, nullptr);
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
            const std::string what =
                fmt::format("gated {} nnz {} bits {} act {} streaming {}", gated, nnz, b, act, stream);
            EXPECT_EQ(y1m.get(size_t(first_rows)), y1.get(size_t(first_rows))) << what;
            const std::vector<float> want = y2.get(size_t(dim)), got = y2f.get(size_t(dim));
            EXPECT_EQ(got, want) << what;
            double largest = 0;  // a real input, not zeros on both sides
            for (float v : want) largest = std::max(largest, double(std::fabs(v)));
            EXPECT_GT(largest, 0.1) << what;
            // The bit-plane GEMV (a matrix without tiles) refuses fragments rather than misread them.
            EXPECT_THROW(cuda::bitplane_gemv(down_untiled.d, b, frag_in, o2, nullptr), std::exception) << what;
          }
    }
  }
  cuda::set_pair_lut_stream(true), cuda::set_pair_lut_stream_rounds_3bit(1), cuda::set_pair_lut_roll(true);  // the defaults
}

// The next GEMV's RMSNorm folded into a residual GEMV (GemvOutput::norm_fragments): the
// producer's y is unchanged, and the consumer reading the f16 fragments of norm_w * y and the
// tasks' sums of squares matches the CPU on the normed y, as the RMSNorm prologue does (both
// round to f16 once: within 6e-4 of the sum of |w x|). Producers of 16 chunk pairs and of 2
// (the streaming GEMV's warp groups) and the task loop, consumers streaming and on the task
// loop, with and without DNS outliers.
TEST(Cuda, FoldedNormMatchesTheNormPrologue) {
  SKIP_WITHOUT_GPU();
  const int64_t dim = 3900, rows = 70;
  cuda::set_pair_lut_stream_rounds_3bit(1);
  std::vector<float> x(static_cast<size_t>(dim)), y0(static_cast<size_t>(dim)), nw1(static_cast<size_t>(dim));
  fill_uniform(17, {&x, &y0, &nw1});
  Dev<float> dx(x);
  const float eps = 1e-5f;
  // Norm weights within 1 (folded as they are) and up to 3.7 (folded divided by 4, the
  // consumer's scale times 4: the same bits as folding them undivided, which fits f16 here).
  for (float wmul : {1.f, 3.7f})
    for (int64_t pcols : {dim, int64_t(300)})
      for (int nnz : {0, 2}) {
        HostMatrix hp = random_matrix(dim, pcols, 2, 5, nnz, 40 + nnz), hc = random_matrix(rows, dim, 2, 5, nnz, 50 + nnz);
        DeviceMatrix producer(hp, true), consumer(hc, true);
        for (int b = 2; b <= 5; ++b)
          for (bool stream : {true, false}) {  // the streaming GEMV (2..5 bits) or the task loop
            // 4..5 bits: the 3900-column producer on the rolling GEMV over 24 blocks (11 tasks a block)
            cuda::set_pair_lut_stream(stream), cuda::set_pair_lut_roll(stream, 24);
            const std::string what =
                fmt::format("norm weights x{} producer cols {} nnz {} bits {} streaming {}", wmul, pcols, nnz, b, stream);
            std::vector<float> nw(nw1), nw_fold(nw1);
            for (size_t j = 0; j < nw.size(); ++j) nw[j] *= wmul, nw_fold[j] = nw[j] / (wmul > 1.f ? 4.f : 1.f);
            Dev<float> dnw(nw), dnw_fold(nw_fold);
            Dev<float> y_plain(y0), y_fold(y0), y_whole(y0), sums(static_cast<size_t>((dim + 15) / 16)),
                sums_whole(static_cast<size_t>((dim + 15) / 16)), out_ref(static_cast<size_t>(rows)),
                out_fold(static_cast<size_t>(rows)), out_whole(static_cast<size_t>(rows));
            Dev<uint16_t> frag(static_cast<size_t>(cuda::fragment_halves(dim))),
                frag_whole(static_cast<size_t>(cuda::fragment_halves(dim)));
            ASSERT_EQ(cudaMemset(frag.p, 0, sizeof(uint16_t) * size_t(cuda::fragment_halves(dim))), cudaSuccess);
            ASSERT_EQ(cudaMemset(frag_whole.p, 0, sizeof(uint16_t) * size_t(cuda::fragment_halves(dim))), cudaSuccess);
            cuda::GemvInput plain;
            plain.x = dx.p;
            cuda::GemvOutput op;
            op.y = y_plain.p, op.accumulate = true;
            cuda::bitplane_gemv(producer.d, b, plain, op, nullptr);
            cuda::GemvOutput of = op;
            of.y = y_fold.p, of.norm_w = dnw_fold.p, of.norm_fragments = frag.p, of.sumsq_partials = sums.p;
            cuda::bitplane_gemv(producer.d, b, plain, of, nullptr);
            cuda::GemvOutput ow = op;  // the weights folded undivided
            ow.y = y_whole.p, ow.norm_w = dnw.p, ow.norm_fragments = frag_whole.p, ow.sumsq_partials = sums_whole.p;
            cuda::bitplane_gemv(producer.d, b, plain, ow, nullptr);
            cuda::GemvInput normed;  // the consumer norming y itself
            normed.x = y_plain.p, normed.prologue = cuda::GemvPrologue::RmsNorm, normed.norm_w = dnw.p, normed.eps = eps;
            cuda::GemvOutput oc;
            oc.y = out_ref.p;
            cuda::bitplane_gemv(consumer.d, b, normed, oc, nullptr);
            cuda::GemvInput folded;
            folded.prologue = cuda::GemvPrologue::Fragments, folded.fragments = frag.p, folded.sumsq_partials = sums.p;
            folded.eps = eps, folded.norm_gain = wmul > 1.f ? 4.f : 1.f;
            oc.y = out_fold.p;
            cuda::bitplane_gemv(consumer.d, b, folded, oc, nullptr);
            cuda::GemvInput whole = folded;
            whole.fragments = frag_whole.p, whole.sumsq_partials = sums_whole.p, whole.norm_gain = 1.f;
            oc.y = out_whole.p;
            cuda::bitplane_gemv(consumer.d, b, whole, oc, nullptr);
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
            EXPECT_EQ(out_fold.get(size_t(rows)), out_whole.get(size_t(rows))) << what;
            const std::vector<float> yp = y_plain.get(size_t(dim));
            EXPECT_EQ(y_fold.get(size_t(dim)), yp) << what;
            std::vector<float> xn(static_cast<size_t>(dim)), w(static_cast<size_t>(dim));
            kernels::rmsnorm(xn.data(), yp.data(), nw.data(), int(dim), eps);
            const std::vector<float> ref = out_ref.get(size_t(rows)), got = out_fold.get(size_t(rows));
            for (int64_t r = 0; r < rows; ++r) {
              const float want = kernels::bitplane_dot_scalar(hc.m, b, r, xn.data());
              kernels::bitplane_dequant_row(hc.m, b, r, w.data());
              double scale = 0;
              for (int64_t j = 0; j < dim; ++j) scale += std::fabs(double(w[size_t(j)]) * xn[size_t(j)]);
              ASSERT_NEAR(got[size_t(r)], want, 1e-4 * (1 + std::fabs(want)) + 6e-4 * scale) << what << " row " << r;
              ASSERT_NEAR(ref[size_t(r)], want, 1e-4 * (1 + std::fabs(want)) + 6e-4 * scale) << what << " row " << r;
            }
          }
      }
  cuda::set_pair_lut_stream(true), cuda::set_pair_lut_stream_rounds_3bit(1), cuda::set_pair_lut_roll(true);  // the defaults
}

// The streaming GEMV over column slices (matrices of more than 4096 columns at 2..3 bits,
// GemvOutput::slice_partials) against the CPU and the task loop: 2 to 4 slices (11008 columns:
// 14, 14 and 15 chunk pairs; 6900: a ragged last chunk), partial last tasks, 6400 rows (10 tasks
// a block at 3 bits), DNS outliers (the first slice adds them), x staged from f32 and read from
// fragments straight into registers, a residual add with a bias and the next GEMV's folded norm.
// The slices' sums land in the scratch (so the sliced kernel ran) and add up to the row; a
// second launch gives the same bits (the counts went back to zero, the sum's order is fixed).
TEST(Cuda, ColumnSlicesMatchCpuAndTheTaskLoop) {
  SKIP_WITHOUT_GPU();
  struct Reset {  // back to the defaults however the test ends
    int slices = cuda::set_pair_lut_slices(2);
    ~Reset() { cuda::set_pair_lut_slices(slices), cuda::set_pair_lut_stream(true), cuda::set_pair_lut_stream_rounds_3bit(1); }
  } reset;
  cuda::set_pair_lut_stream(true), cuda::set_pair_lut_stream_rounds_3bit(1);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{300, 11008}, {6400, 11008}, {70, 8192},
                                                           {45, 6900},   {200, 5632},   {33, 16000}};
  uint32_t seed = 70;
  for (auto [rows, cols] : shapes)
    for (int nnz : {0, 3}) {
      if (rows > 1000 && nnz) continue;
      HostMatrix h = random_matrix(rows, cols, 2, 3, nnz, seed++);
      DeviceMatrix tiled(h, true);
      std::vector<float> x(static_cast<size_t>(cols)), bias(static_cast<size_t>(rows)), y0(bias.size()), nw(bias.size());
      fill_uniform(seed, {&x, &bias, &y0, &nw});
      for (auto& v : nw) v *= 0.4f;  // |w| <= 1: folded as they are
      // x through f16, as the tensor-core GEMV rounds it; the fragments hold the same halves.
      std::vector<float> x16(x.size());
      std::vector<uint16_t> frag_host(static_cast<size_t>(cuda::fragment_halves(cols)), 0);
      for (int64_t j = 0; j < cols; ++j) {
        const uint16_t half = f32_to_f16(x[size_t(j)]);
        x16[size_t(j)] = f16_to_f32(half), frag_host[size_t(cuda::fragment_slot(j))] = half;
      }
      Dev<float> dx(x16), dbias(bias), dnw(nw);
      Dev<uint16_t> dfrag(frag_host);
      const int64_t tasks = (rows + 15) / 16, slices = ((cols + 255) / 256 + 15) / 16;
      Dev<float> partials(static_cast<size_t>(cuda::slice_partial_floats(rows)));
      Dev<unsigned> counts(static_cast<size_t>(tasks));
      ASSERT_EQ(cudaMemset(counts.p, 0, sizeof(unsigned) * size_t(tasks)), cudaSuccess);
      std::vector<double> scale(static_cast<size_t>(rows));
      std::vector<float> ref(scale.size()), w(static_cast<size_t>(cols));
      for (int b = 2; b <= 3; ++b) {
        for (int64_t r = 0; r < rows; ++r) {
          ref[size_t(r)] = y0[size_t(r)] + bias[size_t(r)] + kernels::bitplane_dot_scalar(h.m, b, r, x16.data());
          kernels::bitplane_dequant_row(h.m, b, r, w.data());
          double s = 0;
          for (int64_t j = 0; j < cols; ++j) s += std::fabs(double(w[size_t(j)]) * x16[size_t(j)]);
          scale[size_t(r)] = s;
        }
        for (bool from_fragments : {false, true}) {
          const std::string what = fmt::format("{}x{} nnz {} bits {} fragments {}", rows, cols, nnz, b, from_fragments);
          cuda::GemvInput in;
          if (from_fragments) in.prologue = cuda::GemvPrologue::Fragments, in.fragments = dfrag.p;
          else in.x = dx.p;
          // run 0 and 1: sliced (the scratch cleared before run 0); run 2: the task loop
          std::vector<float> y[3], sums[3];
          std::vector<uint16_t> folded[3];
          for (int run = 0; run < 3; ++run) {
            cuda::set_pair_lut_slices(run < 2 ? 2 : 0);
            if (run == 0) {
              ASSERT_EQ(cudaMemset(partials.p, 0, sizeof(float) * size_t(cuda::slice_partial_floats(rows))), cudaSuccess);
            }
            Dev<float> dy(y0), dsums(static_cast<size_t>(tasks));
            Dev<uint16_t> dfold(static_cast<size_t>(cuda::fragment_halves(rows)));
            cuda::GemvOutput out;
            out.y = dy.p, out.accumulate = true, out.bias = dbias.p;
            out.norm_w = dnw.p, out.norm_fragments = dfold.p, out.sumsq_partials = dsums.p;
            out.slice_partials = partials.p, out.slice_counts = counts.p, out.slice_tasks = tasks;
            ASSERT_TRUE(cuda::pair_lut_gemv(tiled.d, b, in, out, nullptr)) << what;
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
            y[run] = dy.get(size_t(rows)), sums[run] = dsums.get(size_t(tasks));
            folded[run] = dfold.get(size_t(cuda::fragment_halves(rows)));
          }
          EXPECT_EQ(y[1], y[0]) << what;
          EXPECT_EQ(sums[1], sums[0]) << what;
          EXPECT_EQ(folded[1], folded[0]) << what;
          EXPECT_EQ(counts.get(size_t(tasks)), std::vector<unsigned>(size_t(tasks), 0u)) << what;
          const std::vector<float> part = partials.get(size_t(tasks * slices * 16));
          for (int64_t r = 0; r < rows; ++r) {
            const double tol = 6e-4 * scale[size_t(r)] + 1e-4 * (1 + std::fabs(ref[size_t(r)]));
            ASSERT_NEAR(y[0][size_t(r)], ref[size_t(r)], tol) << what << " row " << r;
            ASSERT_NEAR(y[2][size_t(r)], ref[size_t(r)], tol) << what << " row " << r << " (task loop)";
            double total = 0;  // the slices' sums in the scratch: the row less its bias and residual
            for (int64_t k = 0; k < slices; ++k) total += part[size_t(((r / 16) * slices + k) * 16 + r % 16)];
            ASSERT_NEAR(total, double(y[0][size_t(r)]) - y0[size_t(r)] - bias[size_t(r)], 1e-4 * (1 + std::fabs(total)))
                << what << " row " << r;
            ASSERT_EQ(folded[0][size_t(cuda::fragment_slot(r))], f32_to_f16(nw[size_t(r)] * y[0][size_t(r)])) << what << " row " << r;
          }
          for (int64_t t = 0; t < tasks; ++t) {
            double sq = 0;
            for (int64_t r = 16 * t; r < std::min(rows, 16 * t + 16); ++r) sq += double(y[0][size_t(r)]) * y[0][size_t(r)];
            ASSERT_NEAR(sums[0][size_t(t)], sq, 1e-5 * sq + 1e-6) << what << " task " << t;
          }
        }
      }
    }
}

// The decode attention's split count grows with the context (graphs are kept per count):
// never fewer splits for a longer context, more from 1792 positions on (in 128-thread
// blocks; below, 256, and for heads of at most 64 below 512 positions one block of 512 a
// head), at least 32 positions a split at the context bound, at most 16.
TEST(Cuda, DecodeAttentionSplitsFollowTheContext) {
  SKIP_WITHOUT_GPU();
  if (std::getenv("PMPD_CUDA_ATTN_SPLITS")) GTEST_SKIP() << "PMPD_CUDA_ATTN_SPLITS fixes the split count";
  for (int head_dim : {64, 80, 128})
    for (int heads : {8, 32, 64})
      for (int max_ctx : {64, 2048, 4096}) {
        const std::string what = fmt::format("{} heads of {}, context bound {}", heads, head_dim, max_ctx);
        int last = 0;
        for (int ctx = 1; ctx <= max_ctx; ctx += 7) {
          const int s = cuda::attention_decode_splits(heads, head_dim, max_ctx, ctx);
          EXPECT_GE(s, last) << what << ", context " << ctx;
          EXPECT_GE(s, 1);
          EXPECT_LE(s, 16);
          EXPECT_LE(s, std::max(1, max_ctx / 32));
          last = s;
        }
        // Short contexts: wider blocks, at most one a multiprocessor; long ones: more, narrower.
        const int first_splits = cuda::attention_decode_splits(heads, head_dim, max_ctx, 100);
        const int short_splits = cuda::attention_decode_splits(heads, head_dim, max_ctx, std::min(max_ctx, 1000));
        EXPECT_LE(heads * short_splits, std::max(heads, cuda::multiprocessor_count())) << what;
        if (head_dim <= 64) {
          EXPECT_EQ(first_splits, 1) << what;
        } else {
          EXPECT_EQ(first_splits, short_splits) << what;
        }
        const bool default_threads = !std::getenv("PMPD_CUDA_ATTN_THREADS");
        if (default_threads) {
          EXPECT_EQ(cuda::attention_decode_threads(heads, head_dim, max_ctx, first_splits), head_dim <= 64 ? 512 : 256)
              << what;
          if (max_ctx >= 1000) {
            EXPECT_EQ(cuda::attention_decode_threads(heads, head_dim, max_ctx, short_splits), 256) << what;
          }
        }
        if (max_ctx >= 2048) {
          const int long_splits = cuda::attention_decode_splits(heads, head_dim, max_ctx, 1800);
          EXPECT_GT(long_splits, short_splits) << what;
          if (default_threads) {
            EXPECT_EQ(cuda::attention_decode_threads(heads, head_dim, max_ctx, long_splits), 128) << what;
          }
        }
      }
}

// The decode attention (RoPE, KV store and split softmax fused) against a plain CPU
// computation, over contexts that leave some splits empty and some long, with grouped
// heads, partial and interleaved rotation, several split counts and block sizes.
TEST(Cuda, DecodeAttentionMatchesCpuAtEverySplit) {
  SKIP_WITHOUT_GPU();
  struct Shape {
    int heads, kv_heads, head_dim, rotary_dim;
    bool interleaved;
  };
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (Shape sh : {Shape{4, 4, 64, 64, false}, Shape{8, 2, 128, 128, true}, Shape{6, 3, 80, 32, false},
                   Shape{2, 1, 256, 64, false}, Shape{3, 1, 36, 16, true}})
    for (int len : {1, 5, 300})
      for (int splits : {1, 3, 8, 16})
        for (int threads : {0, 256, 512}) {  // 0: the default block size
          const int max_ctx = 320, kv_dim = sh.kv_heads * sh.head_dim, Q = sh.heads * sh.head_dim;
          const int pos = len - 1;
          std::vector<float> qkv(size_t(Q + 2 * kv_dim));
          for (auto& v : qkv) v = u(rng);
          std::vector<uint16_t> kc(size_t(max_ctx) * kv_dim, 0), vc(kc.size(), 0);
          for (size_t i = 0; i < size_t(pos) * kv_dim; ++i) kc[i] = f32_to_f16(u(rng)), vc[i] = f32_to_f16(u(rng));
          kernels::RopeTable rope(sh.rotary_dim, 10000.f);
          // The CPU: rotate, store rounded to f16, softmax over the cache.
          std::vector<float> q(qkv.begin(), qkv.begin() + Q), k(qkv.begin() + Q, qkv.begin() + Q + kv_dim);
          kernels::rope(q.data(), sh.heads, sh.head_dim, sh.rotary_dim, pos, rope, sh.interleaved);
          kernels::rope(k.data(), sh.kv_heads, sh.head_dim, sh.rotary_dim, pos, rope, sh.interleaved);
          std::vector<uint16_t> kc_want = kc, vc_want = vc;
          for (int i = 0; i < kv_dim; ++i)
            kc_want[size_t(pos) * kv_dim + i] = f32_to_f16(k[size_t(i)]),
            vc_want[size_t(pos) * kv_dim + i] = f32_to_f16(qkv[size_t(Q + kv_dim + i)]);
          std::vector<float> want(static_cast<size_t>(Q));
          for (int h = 0; h < sh.heads; ++h) {
            const int kvh = h / (sh.heads / sh.kv_heads);
            std::vector<float> sc(static_cast<size_t>(len));
            for (int p = 0; p < len; ++p) {
              double d = 0;
              for (int i = 0; i < sh.head_dim; ++i)
                d += double(q[size_t(h * sh.head_dim + i)]) * f16_to_f32(kc_want[size_t(p) * kv_dim + kvh * sh.head_dim + i]);
              sc[size_t(p)] = float(d / std::sqrt(double(sh.head_dim)));
            }
            kernels::softmax(sc.data(), len);
            for (int i = 0; i < sh.head_dim; ++i) {
              double o = 0;
              for (int p = 0; p < len; ++p) o += sc[size_t(p)] * f16_to_f32(vc_want[size_t(p) * kv_dim + kvh * sh.head_dim + i]);
              want[size_t(h * sh.head_dim + i)] = float(o);
            }
          }
          Dev<float> dqkv(qkv), dfreq(rope.inv_freq);
          Dev<uint16_t> dk(kc), dv(vc);
          std::vector<uint16_t*> slot_list = {dk.p, dv.p};
          Dev<uint16_t*> slots(slot_list);
          Dev<cuda::StepState> step(std::vector<cuda::StepState>{{pos}});
          Dev<float> partial(cuda::attention_decode_partial_floats(sh.heads, sh.head_dim, splits)), out(static_cast<size_t>(Q));
          Dev<unsigned> counters(std::vector<unsigned>(size_t(sh.heads), 0));
          cuda::DecodeAttentionArgs a;
          a.qkv = dqkv.p, a.n_heads = sh.heads, a.n_kv_heads = sh.kv_heads, a.head_dim = sh.head_dim;
          a.rotary_dim = sh.rotary_dim, a.interleaved = sh.interleaved, a.inv_freq = dfreq.p;
          a.k_off = Q, a.v_off = Q + kv_dim, a.kv_slots = slots.p, a.step = step.p, a.max_ctx = max_ctx;
          a.splits = splits, a.threads = threads, a.partial = partial.p, a.counters = counters.p, a.out = out.p;
          const size_t halves = size_t(cuda::fragment_halves(Q));
          Dev<uint16_t> frag(std::vector<uint16_t>(halves, 0));
          for (int rep = 0; rep < 2; ++rep) {  // twice: the counters are left ready for the next call
            if (rep == 1) a.fragments = frag.p;  // the second call also writes the output projection's input
            cuda::attention_decode(a, nullptr);
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
            const std::string what = fmt::format("heads {}/{} dim {} rotary {} len {} splits {} threads {} call {}",
                                                 sh.heads, sh.kv_heads, sh.head_dim, sh.rotary_dim, len, splits, threads, rep);
            // The rotations' f32 results may differ in a last bit, so a new key may round to the
            // neighbouring f16; the rest of the cache must be untouched.
            EXPECT_LT(test::rel_error(out.get(size_t(Q)), want), 1e-4) << what;
            for (auto [dev, host] : {std::pair{&dk, &kc_want}, std::pair{&dv, &vc_want}}) {
              std::vector<uint16_t> got = dev->get(kc.size());
              EXPECT_TRUE(std::equal(got.begin(), got.begin() + ptrdiff_t(pos) * kv_dim, host->begin())) << what;
              EXPECT_TRUE(std::equal(got.begin() + ptrdiff_t(pos + 1) * kv_dim, got.end(), host->begin() + ptrdiff_t(pos + 1) * kv_dim)) << what;
              std::vector<float> a_new(static_cast<size_t>(kv_dim)), b_new(static_cast<size_t>(kv_dim));
              for (int i = 0; i < kv_dim; ++i)
                a_new[size_t(i)] = f16_to_f32(got[size_t(pos) * kv_dim + i]), b_new[size_t(i)] = f16_to_f32((*host)[size_t(pos) * kv_dim + i]);
              EXPECT_LT(test::rel_error(a_new, b_new), 2e-3) << what;
            }
            EXPECT_EQ(counters.get(size_t(sh.heads)), std::vector<unsigned>(size_t(sh.heads), 0)) << what;
            if (rep == 1) {  // the fragments: the output rounded to f16 at its slots, zero past Q
              std::vector<uint16_t> want_frag(halves, 0);
              const std::vector<float> got_out = out.get(size_t(Q));
              for (int c = 0; c < Q; ++c) want_frag[size_t(cuda::fragment_slot(c))] = f32_to_f16(got_out[size_t(c)]);
              EXPECT_EQ(frag.get(halves), want_frag) << what;
            }
          }
        }
}

// The prompt pass's causal attention against a plain CPU computation, both kernels (the
// tensor cores' where the head is a multiple of 8, and the f32 one): prompts shorter than a
// tile, across query and key tiles and past a cached prefix, with grouped heads and head
// sizes that are not multiples of 8, 16 or 32. The tensor cores' kernel splits q and P into
// two f16 parts each, so it is held to the f32 kernel's bound.
TEST(Cuda, PrefillAttentionMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct Shape {
    int heads, kv_heads, head_dim;
  };
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int mma : {1, 0})
  for (Shape sh : {Shape{4, 4, 64}, Shape{8, 2, 128}, Shape{6, 3, 80}, Shape{2, 1, 256}, Shape{3, 1, 36},
                   Shape{2, 2, 40}})
    for (int pos0 : {0, 37})
      for (int n : {1, 5, 64, 130, 250}) {
        cuda::set_prefill_attention_mma(mma);
        EXPECT_EQ(cuda::prefill_attention_mma_fits(sh.head_dim), mma == 1 && sh.head_dim % 8 == 0);
        const int max_ctx = 300, kv_dim = sh.kv_heads * sh.head_dim, Q = sh.heads * sh.head_dim;
        const int stride = Q + 2 * kv_dim, len = pos0 + n;
        std::vector<float> qkv(size_t(n) * stride);
        for (auto& v : qkv) v = 2.f * u(rng);
        std::vector<uint16_t> kc(size_t(max_ctx) * kv_dim, 0), vc(kc.size(), 0);
        for (size_t i = 0; i < size_t(len) * kv_dim; ++i) kc[i] = f32_to_f16(u(rng)), vc[i] = f32_to_f16(u(rng));
        std::vector<float> want(size_t(n) * Q);
        for (int t = 0; t < n; ++t)
          for (int h = 0; h < sh.heads; ++h) {
            const int kvh = h / (sh.heads / sh.kv_heads), seen = pos0 + t + 1;
            std::vector<float> sc(static_cast<size_t>(seen));
            for (int p = 0; p < seen; ++p) {
              double d = 0;
              for (int i = 0; i < sh.head_dim; ++i)
                d += double(qkv[size_t(t) * stride + h * sh.head_dim + i]) *
                     f16_to_f32(kc[size_t(p) * kv_dim + kvh * sh.head_dim + i]);
              sc[size_t(p)] = float(d / std::sqrt(double(sh.head_dim)));
            }
            kernels::softmax(sc.data(), seen);
            for (int i = 0; i < sh.head_dim; ++i) {
              double o = 0;
              for (int p = 0; p < seen; ++p) o += sc[size_t(p)] * f16_to_f32(vc[size_t(p) * kv_dim + kvh * sh.head_dim + i]);
              want[size_t(t) * Q + h * sh.head_dim + i] = float(o);
            }
          }
        Dev<float> dqkv(qkv), out(want.size());
        Dev<uint16_t> dk(kc), dv(vc);
        std::vector<uint16_t*> slot_list = {dk.p, dv.p};
        Dev<uint16_t*> slots(slot_list);
        Dev<cuda::StepState> step(std::vector<cuda::StepState>{{pos0}});
        cuda::attention(dqkv.p, n, stride, sh.heads, sh.kv_heads, sh.head_dim, slots.p, max_ctx, step.p, out.p, nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        EXPECT_LT(test::rel_error(out.get(want.size()), want), 1e-4)
            << fmt::format("{} kernel, heads {}/{} dim {} pos0 {} n {}", mma ? "mma" : "f32", sh.heads, sh.kv_heads,
                           sh.head_dim, pos0, n);
      }
  cuda::set_prefill_attention_mma(-1);
}

// The prompt pass's norms (stop 49): the residual adds before the norm written back into x,
// the norm against the CPU's, and the f16 copy equal to the f32 output rounded; RMSNorm and
// LayerNorm (with and without weights), rows of four-float loads and of odd length. (Added
// after stop 49's last device call: not yet run on a GPU.)
TEST(Cuda, NormRowsTakeTheAddsAndWriteTheF16Copy) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(49);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  auto randoms = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
  };
  for (bool rms : {true, false})
    for (int dim : {4096, 37})
      for (int adds : {0, 1, 2}) {
        const int n = 5;
        const size_t count = size_t(n) * dim;
        const std::vector<float> x = randoms(count), a0 = randoms(count), a1 = randoms(count), w = randoms(size_t(dim)),
                                 b = randoms(size_t(dim));
        std::vector<float> want_x = x;
        for (size_t i = 0; i < count; ++i) {
          if (adds >= 1) want_x[i] += a0[i];
          if (adds >= 2) want_x[i] += a1[i];
        }
        const bool weighted = rms || adds != 1;  // LayerNorm also without weight and bias
        std::vector<float> want(count);
        for (int t = 0; t < n; ++t) {
          const float* xi = want_x.data() + size_t(t) * dim;
          if (rms) kernels::rmsnorm(want.data() + size_t(t) * dim, xi, w.data(), dim, 1e-5f);
          else kernels::layernorm(want.data() + size_t(t) * dim, xi, weighted ? w.data() : nullptr, weighted ? b.data() : nullptr, dim, 1e-5f);
        }
        Dev<float> dx(x), d0(a0), d1(a1), dw(w), db(b), out(count);
        Dev<uint16_t> out16(count);
        cuda::norm_rows(rms, dx.p, adds >= 1 ? d0.p : nullptr, adds >= 2 ? d1.p : nullptr, weighted ? dw.p : nullptr,
                        weighted && !rms ? db.p : nullptr, out.p, out16.p, n, dim, 1e-5f, nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::string what = fmt::format("{} dim {} adds {}", rms ? "rms" : "layer", dim, adds);
        EXPECT_EQ(dx.get(count), want_x) << what;  // the same f32 additions in the same order
        const std::vector<float> got = out.get(count);
        EXPECT_LT(test::rel_error(got, want), 1e-5) << what;
        const std::vector<uint16_t> got16 = out16.get(count);
        size_t differ = 0;
        for (size_t i = 0; i < count; ++i) differ += got16[i] != f32_to_f16(got[i]);
        EXPECT_EQ(differ, 0u) << what;
      }
}

TEST(Cuda, DequantizedMatrixEqualsCpuRows) {
  SKIP_WITHOUT_GPU();
  // Rows in order and odd columns; a fused gate|up's interleaved halves and 16-byte rows.
  for (auto [rows, cols, interleave] : {std::tuple<int64_t, int64_t, int64_t>{45, 300, 0}, {34, 513, 17}, {32, 520, 16}}) {
    HostMatrix h = random_matrix(rows, cols, 2, 8, 2, 99);
    DeviceMatrix dm(h), tiled(h, true, interleave);
    cuda::DeviceBitPlanes tiles_only = tiled.d;  // as the model keeps it: no on-disk planes
    tiles_only.planes = nullptr;
    Dev<uint16_t> out(size_t(rows * cols));
    for (int b = 2; b <= 8; ++b)
      for (bool from_tiles : {false, true}) {
        if (!from_tiles && interleave) continue;  // the planes know no interleaving
        cuda::bitplane_dequant_f16(from_tiles ? tiles_only : dm.d, b, out.p, nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<uint16_t> w = out.get(size_t(rows * cols));
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
          kernels::bitplane_dequant_row(h.m, b, r, row.data());
          for (int64_t j = 0; j < cols; ++j)
            ASSERT_EQ(f16_to_f32(w[size_t(r * cols + j)]), row[size_t(j)])
                << rows << "x" << cols << " bits " << b << " row " << r << " col " << j << " tiles " << from_tiles;
        }
      }
  }
}

// The tile layout on the host (no GPU needed): every code of every width reads back from the
// tiles as the on-disk planes hold it, rows in order and with the halves interleaved (a
// fused gate|up), odd sizes included; and the tiles hold exactly the planes' set bits.
TEST(CudaTiles, CodesReadBackFromTheTileLayout) {
  for (auto [rows, cols, interleave] : {std::tuple<int64_t, int64_t, int64_t>{45, 300, 0}, {34, 513, 17}, {16, 256, 8}}) {
    HostMatrix h = random_matrix(rows, cols, 2, 8, 0, uint32_t(rows + cols));
    cuda::DeviceBitPlanes m;  // host pointers: the host twins read them
    m.rows = rows, m.cols = cols, m.plane_stride = h.m.plane_stride, m.bits_min = 2, m.bits_max = 8;
    m.planes = h.planes.data(), m.tiles_interleave = interleave;
    const std::vector<uint32_t> tiles = cuda::tile_bitplanes_host(m, 8);
    int64_t set_bits = 0, plane_bits = 0;
    for (uint32_t w : tiles) set_bits += __builtin_popcount(w);
    for (uint8_t b : h.planes) plane_bits += __builtin_popcount(b);
    EXPECT_EQ(set_bits, plane_bits) << rows << "x" << cols;
    for (int bits = 2; bits <= 8; ++bits)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) {
          int want = 0;
          for (int k = 0; k < bits; ++k)
            want = (want << 1) | ((h.planes[(size_t(k) * size_t(rows) + size_t(r)) * size_t(m.plane_stride) + size_t(j >> 3)] >> (j & 7)) & 1);
          ASSERT_EQ(cuda::tiled_code_host(m, tiles.data(), bits, r, j), want)
              << rows << "x" << cols << " interleave " << interleave << " bits " << bits << " at " << r << "," << j;
        }
  }
}

// The f16 fragment order every producer of a GEMV input writes (the gate|up GEMV, the decode
// attention) and the GEMV stages x in: lane t of a quad reads one 16-byte slot per pair of
// k-blocks, holding mma.m16n8k16's B registers b0 (rows 2t, 2t + 1 of the k-block) and b1
// (rows 2t + 8, 2t + 9) of both k-blocks, as the PTX ISA lays out the B fragment; every
// column lands in exactly one half of the padded buffer.
TEST(CudaTiles, FragmentSlotsFollowTheMmaOperandLayout) {
  for (int64_t cols : {int64_t(16), int64_t(300), int64_t(4096)}) {
    const int64_t halves = cuda::fragment_halves(cols);
    ASSERT_EQ(halves % 256, 0);
    ASSERT_GE(halves, cols);
    std::vector<int64_t> column_at(size_t(halves), -1);
    for (int64_t c = 0; c < halves; ++c) {
      const int64_t slot = cuda::fragment_slot(c);
      ASSERT_TRUE(slot >= 0 && slot < halves) << c;
      ASSERT_EQ(column_at[size_t(slot)], -1) << "two columns in half " << slot;
      column_at[size_t(slot)] = c;
    }
    for (int64_t pair = 0; pair < halves / 32; ++pair)
      for (int t = 0; t < 4; ++t) {
        const int64_t base = 32 * pair + 2 * t, at = (4 * pair + t) * 8;
        const int64_t want[8] = {base, base + 1, base + 8, base + 9, base + 16, base + 17, base + 24, base + 25};
        for (int i = 0; i < 8; ++i)
          EXPECT_EQ(column_at[size_t(at + i)], want[i]) << "cols " << cols << " k-block pair " << pair << " lane " << t;
      }
  }
}

// The GEMV's decode on the host (the same index arithmetic the kernel runs): every lane's
// tile words give, through the pair tables (2..4 bits) or the single-weight tables (5..8),
// the codes the planes hold at the columns of its mma fragments; padding decodes to code 0.
TEST(CudaTiles, DecodersGiveThePlanesCodes) {
  for (auto [rows, cols, interleave] : {std::tuple<int64_t, int64_t, int64_t>{45, 300, 0}, {34, 513, 17}}) {
    HostMatrix h = random_matrix(rows, cols, 2, 8, 0, uint32_t(3 * rows + cols));
    cuda::DeviceBitPlanes m;
    m.rows = rows, m.cols = cols, m.plane_stride = h.m.plane_stride, m.bits_min = 2, m.bits_max = 8;
    m.planes = h.planes.data(), m.tiles_interleave = interleave;
    const std::vector<uint32_t> tiles = cuda::tile_bitplanes_host(m, 8);
    // The tile layout (pair_lut_gemv.cu): words (k, rb, cp, lane, h), RB row blocks of 8 rows.
    const int64_t RB = interleave ? (interleave + 7) / 8 * 2 : (rows + 15) / 16 * 2, CP = (cols + 255) / 256;
    const int64_t plane_words = RB * CP * 64;
    ASSERT_EQ(int64_t(tiles.size()), 8 * plane_words);
    for (int64_t idx = 0; idx < plane_words; ++idx) {
      const int hh = int(idx & 1), lane = int((idx >> 1) & 31);
      const int64_t cp = (idx >> 6) % CP, rb = (idx >> 6) / CP, g = lane / 4;
      int64_t row = -1;
      if (interleave) {
        const int64_t i = (rb / 2) * 8 + g;
        if (i < interleave) row = (rb % 2) * interleave + i;
      } else if (rb * 8 + g < rows) {
        row = rb * 8 + g;
      }
      for (int bits = 2; bits <= 8; ++bits) {
        uint32_t words[8];
        for (int k = 0; k < bits; ++k) words[k] = tiles[size_t(k * plane_words + idx)];
        const std::vector<int> codes = cuda::decoded_codes_host(words, bits);
        for (int p = 0; p < 16; ++p)
          for (int sec = 0; sec < 2; ++sec) {
            const int64_t col = (2 * cp + hh) * 128 + 16 * (p / 2) + 8 * (p % 2) + 2 * (lane % 4) + sec;
            int want = 0;
            if (row >= 0 && col < cols)
              for (int k = 0; k < bits; ++k)
                want = (want << 1) |
                       ((h.planes[(size_t(k) * size_t(rows) + size_t(row)) * size_t(m.plane_stride) + size_t(col >> 3)] >> (col & 7)) & 1);
            ASSERT_EQ(codes[size_t(2 * p + sec)], want)
                << rows << "x" << cols << " bits " << bits << " word " << idx << " pair " << p << " column " << sec;
          }
      }
    }
  }
}

// Teacher-forced logits of a prompt (all positions) and `steps` single-token passes.
std::vector<std::vector<float>> run_passes(Transformer& tf, const std::vector<int>& prompt, int steps, int bits) {
  const ModelConfig& c = tf.config();
  KVCache cache(c, int(prompt.size()) + steps, true);
  std::vector<std::vector<float>> out;
  std::vector<float> all(prompt.size() * size_t(c.vocab_size));
  tf.forward(prompt.data(), int(prompt.size()), cache, all.data(), true, bits);
  for (size_t t = 0; t < prompt.size(); ++t)
    out.emplace_back(all.begin() + ptrdiff_t(t * size_t(c.vocab_size)), all.begin() + ptrdiff_t((t + 1) * size_t(c.vocab_size)));
  std::vector<float> logits(size_t(c.vocab_size));
  for (int s = 0; s < steps; ++s) {
    int tok = (s * 31 + 7) % c.vocab_size;
    tf.forward(&tok, 1, cache, logits.data(), false, bits);
    out.push_back(logits);
  }
  return out;
}

class CudaArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaArchTest, ForwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  auto m = load_model(test::fixture(GetParam()));
  std::vector<int> prompt;
  for (int i = 0; i < 19; ++i) prompt.push_back((i * 17 + 3) % m->config.vocab_size);
  Transformer cpu(*m), gpu(*m, Backend::CUDA);
  auto a = run_passes(cpu, prompt, 12, 0), b = run_passes(gpu, prompt, 12, 0);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, test::rel_error(b[i], a[i]));
    // Both caches round keys and values to f16; a last-bit difference in an f32 key can
    // round the other way, which these random-weight models amplify to ~1e-3.
    EXPECT_LT(test::rel_error(b[i], a[i]), 4e-3) << GetParam() << " pass " << i;
  }
  std::printf("%s: worst relative logit difference GPU vs CPU %.2e\n", GetParam().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Architectures, CudaArchTest, ::testing::Values("llama", "phi", "stablelm"));

struct ExactKernel {  // the CPU's exact bit-plane kernel (no 8-bit activations) as reference
  kernels::BitPlaneKernel saved = kernels::bitplane_kernel();
  ExactKernel() { kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Exact); }
  ~ExactKernel() { kernels::set_bitplane_kernel(saved); }
};

// The default model quantized to 2..8 bits, on the CPU (exact kernel: the reference) and the GPU.
struct TinyOnBothBackends {
  ExactKernel exact;
  test::TempDir dir;
  std::unique_ptr<Model> m = test::quantized_tiny(dir, 2, 8);
  Tokenizer tok{*m->tokenizer};
  Transformer cpu{*m}, gpu{*m, Backend::CUDA};
};

TEST(Cuda, QuantizedModelGivesCpuTokensAtEveryWidth) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  std::vector<int> prompt = t.tok.encode("German: Zwei Hunde spielen im Schnee.\nEnglish:\n", true);
  for (int b = 2; b <= 8; ++b) {
    auto a = run_passes(t.cpu, prompt, 8, b), g = run_passes(t.gpu, prompt, 8, b);
    // The prompt pass multiplies in f16 on the GPU (dequantized weights, f16 activations,
    // f32 accumulation), the CPU in f32: a few 1e-4 apart, well below a width's effect.
    double worst_prompt = 0, worst_step = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      double e = test::rel_error(g[i], a[i]);
      (i < prompt.size() ? worst_prompt : worst_step) = std::max(i < prompt.size() ? worst_prompt : worst_step, e);
      EXPECT_LT(e, 3e-3) << "bits " << b << " pass " << i;
    }
    std::printf("%d bits: worst relative logit difference GPU vs CPU: prompt %.2e, decode %.2e\n", b, worst_prompt, worst_step);
    GenerateOptions opt;
    opt.max_new_tokens = 24;
    opt.stop_at_eos = false;
    opt.bits = b;
    EXPECT_EQ(generate(t.gpu, prompt, opt).tokens, generate(t.cpu, prompt, opt).tokens) << "bits " << b;
  }
  // The default above keeps only the tiles on the device (the prompt pass dequantizes from
  // them, the DNS corrections read codes there). Widths 5..8 from the on-disk planes instead
  // (tiles for planes 0..3 only, the planes kept): the bit-plane GEMV and the planes'
  // dequantization; the same results.
  setenv("PMPD_CUDA_TILES", "4", 1);
  Transformer planes(*t.m, Backend::CUDA);
  unsetenv("PMPD_CUDA_TILES");
  for (int b = 2; b <= 8; ++b) {
    auto a = run_passes(t.cpu, prompt, 2, b), g = run_passes(planes, prompt, 2, b);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_LT(test::rel_error(g[i], a[i]), 3e-3) << "planes, bits " << b << " pass " << i;
    GenerateOptions opt;
    opt.max_new_tokens = 24;
    opt.stop_at_eos = false;
    opt.bits = b;
    EXPECT_EQ(generate(planes, prompt, opt).tokens, generate(t.cpu, prompt, opt).tokens) << "planes, bits " << b;
  }
}

// --prefill-cache: prompts of more than 8 tokens multiply each quantized matrix's rows kept
// in f16 at their width, the values the dequantization writes for each prompt without it:
// the same logits bit for bit where the prompt takes the dequantized path either way (40
// tokens), the CPU's within the f16 tolerance where it would take the tiled GEMM (12 tokens);
// a width switch dequantizes into the same rows (no growth), and back; a device without room
// for the rows caches nothing and gives the same logits.
TEST(Cuda, PrefillCacheGivesTheDequantizedPassesLogits) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  cuda::set_prefill_cache(true);
  Transformer cached(*t.m, Backend::CUDA);
  cuda::set_prefill_cache(false);
  ASSERT_EQ(cached.device_model()->prefill_cache_bytes(), 0u);
  ASSERT_EQ(t.gpu.device_model()->prefill_cache_bytes(), 0u);
  size_t expected = 0;  // every quantized matrix's rows in f16
  for (const LayerWeights& w : t.m->layers)
    for (const Linear* l : {&w.q, &w.k, &w.v, &w.o, &w.gate, &w.up, &w.down})
      if (l->q) expected += size_t(l->out() * l->in()) * 2;
  if (t.m->output.q) expected += size_t(t.m->output.out() * t.m->output.in()) * 2;
  ASSERT_GT(expected, 0u);
  const int vocab = t.m->config.vocab_size;
  std::vector<int> long_prompt(40), short_prompt(12);
  for (size_t i = 0; i < long_prompt.size(); ++i) long_prompt[i] = int((i * 37 + 5) % size_t(vocab));
  for (size_t i = 0; i < short_prompt.size(); ++i) short_prompt[i] = int((i * 53 + 11) % size_t(vocab));
  for (int b : {3, 5, 3, 8, 2}) {
    auto ref = run_passes(t.gpu, long_prompt, 2, b), got = run_passes(cached, long_prompt, 2, b);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], ref[i]) << "bits " << b << " pass " << i;
    EXPECT_EQ(cached.device_model()->prefill_cache_bytes(), expected) << "bits " << b;
    auto cpu = run_passes(t.cpu, short_prompt, 2, b), s = run_passes(cached, short_prompt, 2, b);
    for (size_t i = 0; i < s.size(); ++i) EXPECT_LT(test::rel_error(s[i], cpu[i]), 3e-3) << "short, bits " << b << " pass " << i;
  }
  EXPECT_EQ(t.gpu.device_model()->prefill_cache_bytes(), 0u);

  // A device without room (asked to keep more free than it has): nothing cached, the same
  // logits as without the cache.
  setenv("PMPD_CUDA_PREFILL_CACHE_FREE_GIB", "100000", 1);
  cuda::set_prefill_cache(true);
  Transformer full(*t.m, Backend::CUDA);
  cuda::set_prefill_cache(false);
  unsetenv("PMPD_CUDA_PREFILL_CACHE_FREE_GIB");
  auto ref = run_passes(t.gpu, long_prompt, 2, 3), got = run_passes(full, long_prompt, 2, 3);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], ref[i]) << "full, pass " << i;
  EXPECT_EQ(full.device_model()->prefill_cache_bytes(), 0u);
}

TEST(Cuda, ProgressiveScheduleSwitchesWidthsOnTheDevice) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  std::vector<int> prompt = t.tok.encode("English: a dog runs\nGerman:\n", true);
  GenerateOptions opt;
  opt.max_new_tokens = 30;
  opt.stop_at_eos = false;
  auto s1 = make_scheduler("4:6,3:12,2", 30, 5, 8), s2 = make_scheduler("4:6,3:12,2", 30, 5, 8);
  opt.scheduler = s1.get();
  GenerateResult a = generate(t.cpu, prompt, opt);
  opt.scheduler = s2.get();
  GenerateResult g = generate(t.gpu, prompt, opt);
  EXPECT_EQ(g.tokens, a.tokens);
  EXPECT_EQ(g.token_bits, a.token_bits);
  EXPECT_EQ(g.prefill_bits, 5);
}

// Calibration's branched generations (each branch run to its end with the host one step
// behind on the GPU) give the CPU's tokens, widths, texts and pass count.
TEST(Cuda, BranchedGenerationsEqualTheCpus) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  const std::vector<std::string> stop = {"\n"};
  for (const char* text : {"German: Zwei Hunde spielen im Schnee.\nEnglish:\n", "A dog"}) {
    auto prompt = t.tok.encode(text, true);
    PrecisionSchedule base = parse_schedule("4:2,3", 20, 4);
    std::vector<calib::Branch> br = {{0, 2}, {1, 3}, {5, 2}, {9, 3}};
    calib::TaskLimits lim{&t.tok, 20, stop};
    calib::PassCount on_cpu, on_gpu;
    auto a = calib::generate_with_branches(t.cpu, prompt, 4, base, br, lim, &on_cpu);
    auto g = calib::generate_with_branches(t.gpu, prompt, 4, base, br, lim, &on_gpu);
    ASSERT_EQ(g.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(g[i].tokens, a[i].tokens) << text << " output " << i;
      EXPECT_EQ(g[i].token_bits, a[i].token_bits) << text << " output " << i;
      EXPECT_EQ(g[i].text, a[i].text) << text << " output " << i;
    }
    EXPECT_EQ(on_gpu.passes, on_cpu.passes) << text;
  }
}

TEST(Cuda, ArgmaxPicksTheFirstLargestLikeTheHost) {
  SKIP_WITHOUT_GPU();
#ifdef PMPD_HAVE_CUDA
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  float* dx = nullptr;
  int* dout = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, sizeof(float) * 60000), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dout, sizeof(int)), cudaSuccess);
  auto device_argmax = [&](const std::vector<float>& x, int offset) {
    cudaMemcpy(dx + offset, x.data(), sizeof(float) * x.size(), cudaMemcpyHostToDevice);
    cuda::argmax(dx + offset, int(x.size()), dout, nullptr);
    int got = -1;
    cudaMemcpy(&got, dout, sizeof(int), cudaMemcpyDeviceToHost);
    return got;
  };
  for (int n : {1, 7, 1024, 32000, 50257}) {
    for (int offset : {0, 1}) {  // 16-byte aligned rows and not
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) v = nd(rng);
      auto host = [&] { return int(std::max_element(x.begin(), x.end()) - x.begin()); };
      EXPECT_EQ(device_argmax(x, offset), host()) << n << " " << offset;
      if (n > 3) {  // a tie: the first of the equal maxima wins
        const int i = n / 3, j = n - 2;
        x[size_t(i)] = x[size_t(j)] = 100.f;
        EXPECT_EQ(device_argmax(x, offset), i) << n << " " << offset;
      }
      std::fill(x.begin(), x.end(), -INFINITY);
      EXPECT_EQ(device_argmax(x, offset), 0) << n << " " << offset;
    }
  }
  cudaFree(dx);
  cudaFree(dout);
#endif
}

// The sampling kernel against Sampler::pick on the same logits and draws: vocabularies from 1
// to 250000 tokens (the largest past what a cluster's shared memory holds), every cut, the
// repetition penalty, ties, NaN and -inf logits. PMPD_CUDA_SAMPLE_CLUSTER picks the blocks a
// row is split over (tools/gpu/quick.sh runs this test at 1 and 16 too).
TEST(Cuda, SampleKernelPicksTheHostSamplersTokens) {
  SKIP_WITHOUT_GPU();
#ifdef PMPD_HAVE_CUDA
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  cuda::DevArray<float> dx(250000);
  cuda::DevArray<int> dpen(64), dout(1);
  cuda::DevArray<unsigned long long> dmass(250000);
  int draws = 0, differ = 0;
  for (int n : {1, 5, 1000, 32000, 50257, 250000})
    for (float temp : {0.f, 0.7f, 1.f, 2.5f})
      for (int top_k : {0, 1, 40, 5000})
        for (float top_p : {1.f, 0.9f, 0.3f})
          for (float min_p : {0.f, 0.1f}) {
            SampleDraw d;
            d.temperature = temp, d.top_k = top_k, d.top_p = top_p, d.min_p = min_p;
            d.repeat_penalty = (draws % 3 == 0) ? 1.3f : 1.f;
            d.u = draws % 7 == 0 ? 0.0 : unit(rng);
            std::normal_distribution<float> nd(0.f, draws % 2 ? 3.f : 0.8f);
            std::vector<float> x(static_cast<size_t>(n));
            for (float& v : x) v = draws % 5 == 0 ? std::round(nd(rng) * 2.f) / 2.f : nd(rng);  // ties
            if (n > 10) x[3] = NAN, x[7] = -INFINITY;
            for (int t = 0; t < std::min(n, 40); t += 3) d.penalized.push_back((t * 7919) % n);
            std::sort(d.penalized.begin(), d.penalized.end());
            d.penalized.erase(std::unique(d.penalized.begin(), d.penalized.end()), d.penalized.end());
            cudaMemcpy(dx.get(), x.data(), sizeof(float) * x.size(), cudaMemcpyHostToDevice);
            cudaMemcpy(dpen.get(), d.penalized.data(), sizeof(int) * d.penalized.size(), cudaMemcpyHostToDevice);
            cuda::SampleParams p;
            p.temperature = temp, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p, p.repeat_penalty = d.repeat_penalty;
            p.n_penalized = int(d.penalized.size()), p.u = d.u;
            cuda::sample_token(dx.get(), n, p, dpen.get(), dmass.get(), dout.get(), nullptr);
            int got = -1;
            ASSERT_EQ(cudaMemcpy(&got, dout.get(), sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
            SamplerParams sp;
            Sampler host(sp);
            const int want = host.pick(x.data(), n, d);
            differ += got != want;
            if (got != want && differ <= 5)
              ADD_FAILURE() << "n " << n << " temp " << temp << " top_k " << top_k << " top_p " << top_p << " min_p "
                            << min_p << " u " << d.u << ": device " << got << ", host " << want;
            ++draws;
          }
  EXPECT_EQ(differ, 0) << draws << " draws";
#endif
}

// Sampled generation on a GPU draws on the device (forward_sampled); with the logits kept the
// same steps draw on the host from the same passes' logits: the same tokens.
TEST(Cuda, SampledGenerationOnTheDeviceEqualsTheHostsDraws) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  std::vector<int> prompt = t.tok.encode("English: a dog runs\nGerman:\n", true);
  for (auto [temp, top_k, top_p, penalty] : {std::tuple{0.9f, 0, 1.f, 1.f}, std::tuple{1.3f, 20, 0.9f, 1.2f},
                                             std::tuple{0.f, 0, 1.f, 1.3f}}) {
    GenerateOptions opt;
    opt.max_new_tokens = 24, opt.stop_at_eos = false, opt.bits = 3;
    opt.sampler.temperature = temp, opt.sampler.top_k = top_k, opt.sampler.top_p = top_p;
    opt.sampler.repeat_penalty = penalty, opt.sampler.seed = 17;
    const GenerateResult device = generate(t.gpu, prompt, opt);
    opt.keep_logits = true;  // every step's logits to the host: the host draws
    const GenerateResult host = generate(t.gpu, prompt, opt);
    EXPECT_EQ(device.tokens, host.tokens) << "temperature " << temp << " top-k " << top_k << " penalty " << penalty;
  }
}

// A GPU backend of m with decode-step graphs (the default), then one launching every kernel
// from the host (PMPD_CUDA_GRAPHS=0), each handed to check.
template <class Check>
void with_and_without_graphs(const Model& m, Check&& check) {
  for (bool graphs : {true, false}) {
    if (!graphs) setenv("PMPD_CUDA_GRAPHS", "0", 1);
    Transformer gpu(m, Backend::CUDA);
    unsetenv("PMPD_CUDA_GRAPHS");
    check(gpu, graphs);
  }
}

TEST(Cuda, GreedyStepsOnTheDeviceEqualTheLogitsArgmax) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  const ModelConfig& c = t.m->config;
  std::vector<int> prompt = t.tok.encode("English: a dog runs\nGerman:\n", true);
  with_and_without_graphs(*t.m, [&](Transformer& gpu, bool graphs) {
    KVCache a(c, 64, true), b(c, 64, true);
    std::vector<float> logits(size_t(c.vocab_size));
    gpu.forward(prompt.data(), int(prompt.size()), a, logits.data(), false, 4);
    int want = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
    int got = gpu.forward_greedy(prompt.data(), int(prompt.size()), b, 4);  // a prompt pass
    ASSERT_EQ(got, want);
    for (int step = 0; step < 12; ++step) {  // decode steps, switching widths
      const int bits = 2 + step % 3;
      gpu.forward(&want, 1, a, logits.data(), false, bits);
      got = gpu.forward_greedy(&got, 1, b, bits);
      want = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
      EXPECT_EQ(got, want) << "graphs " << graphs << " step " << step;
      EXPECT_EQ(b.length(), a.length());
    }
  });
}

// Greedy steps queued ahead of the host (what generate() runs on a GPU): a chain whose
// inputs stay on the device gives forward_greedy's tokens, with graphs and without; a pass
// of another cache between two queued steps makes the next one fall back to the host's copy
// of the token; a ticket whose slot later steps took is an error, not a stale token.
TEST(Cuda, QueuedGreedyStepsEqualForwardGreedy) {
  SKIP_WITHOUT_GPU();
  TinyOnBothBackends t;
  const ModelConfig& c = t.m->config;
  std::vector<int> prompt = t.tok.encode("English: a dog runs\nGerman:\n", true);
  with_and_without_graphs(*t.m, [&](Transformer& gpu, bool graphs) {
    KVCache ref(c, 128, true), a(c, 128, true), other(c, 128, true);
    int want = gpu.forward_greedy(prompt.data(), int(prompt.size()), ref, 4);
    int first = gpu.forward_greedy(prompt.data(), int(prompt.size()), a, 4);
    ASSERT_EQ(first, want);
    gpu.forward_greedy(prompt.data(), int(prompt.size()), other, 4);
    int other_token = first;
    std::vector<int> wants, gots;
    int64_t ticket = gpu.queue_step(first, -1, a, 4);
    std::vector<int64_t> tickets = {ticket};
    for (int step = 0; step < 14; ++step) {
      const int bits = 2 + step % 3;
      want = gpu.forward_greedy(&want, 1, ref, step == 0 ? 4 : 2 + (step - 1) % 3);
      wants.push_back(want);
      if (step == 13) break;
      if (step % 5 == 4) other_token = gpu.forward_greedy(&other_token, 1, other, 3);  // another cache's pass between
      ticket = gpu.queue_step(-1, ticket, a, bits);
      tickets.push_back(ticket);
    }
    for (int64_t k : tickets) gots.push_back(gpu.take_step(k));
    EXPECT_EQ(gots, wants) << "graphs " << graphs;
    EXPECT_EQ(a.length(), ref.length());
    test::expect_old_tickets_refused(gpu, first, 3);  // 64 later steps reuse the first one's slot
  });
}

TEST(Cuda, GraphReplayEqualsDirectLaunches) {
  SKIP_WITHOUT_GPU();
  test::TempDir dir;
  auto m = test::quantized_tiny(dir, 2, 5);
  std::vector<int> prompt = {1, 50, 60, 70};
  setenv("PMPD_CUDA_GRAPHS", "0", 1);
  Transformer direct(*m, Backend::CUDA);
  unsetenv("PMPD_CUDA_GRAPHS");
  Transformer graphed(*m, Backend::CUDA);
  for (int b : {5, 3, 2, 3}) {
    auto a = run_passes(direct, prompt, 6, b), g = run_passes(graphed, prompt, 6, b);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(g[i], a[i]) << "bits " << b << " pass " << i;
  }
}

TEST(Cuda, CacheCopiesAndHostSyncFollowTheDevice) {
  SKIP_WITHOUT_GPU();
  auto m = load_model(test::fixture("llama"));
  const ModelConfig& c = m->config;
  Transformer cpu(*m), gpu(*m, Backend::CUDA);
  std::vector<int> prompt = {1, 5, 9, 13, 2};
  KVCache hc(c, 16, true), gc(c, 16, true);
  std::vector<float> la(size_t(c.vocab_size)), lb(la.size());
  cpu.forward(prompt.data(), 5, hc, la.data());
  gpu.forward(prompt.data(), 5, gc, lb.data());
  gc.sync_host();
  std::vector<float> ka(size_t(c.head_dim)), kb(ka.size());
  for (int l = 0; l < c.n_layers; ++l)
    for (int p = 0; p < 5; ++p) {
      hc.load_k(l, p, 0, ka.data()), gc.load_k(l, p, 0, kb.data());
      EXPECT_LT(test::rel_error(kb, ka), 5e-3) << "layer " << l << " pos " << p;
    }
  // A copy continues independently of the original (calibration branches this way).
  KVCache branch = gc;
  int t1 = 7, t2 = 11;
  std::vector<float> x(la.size()), y(la.size()), z(la.size());
  gpu.forward(&t1, 1, branch, x.data());
  gpu.forward(&t2, 1, gc, y.data());
  KVCache hc2 = hc;
  cpu.forward(&t2, 1, hc2, z.data());
  EXPECT_LT(test::rel_error(y, z), 4e-3);
  EXPECT_EQ(branch.length(), 6);
  EXPECT_EQ(gc.length(), 6);
  // The CPU cannot extend a device cache.
  EXPECT_THROW(cpu.forward(&t1, 1, gc, x.data()), Error);
}

// Also with the LM head quantized (`pmpd bench --quantize-head`): the head's GEMV on the
// device at each width.
TEST(Cuda, SyntheticShapesRunEndToEnd) {
  SKIP_WITHOUT_GPU();
  for (bool head : {false, true}) {
    SyntheticOptions so;
    so.quantize_head = head;
    auto m = make_synthetic_model(synthetic_config("tiny"), so);
    ASSERT_EQ(m->output.q != nullptr, head);
    Transformer cpu(*m), gpu(*m, Backend::CUDA);
    ExactKernel exact;
    std::vector<int> prompt = {1, 2, 3, 4, 5, 6};
    for (int b : {2, 3, 4, 8}) {
      auto a = run_passes(cpu, prompt, 4, b), g = run_passes(gpu, prompt, 4, b);
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_LT(test::rel_error(g[i], a[i]), 1e-3) << "bits " << b << (head ? ", head quantized" : "");
    }
  }
}

// The dependent chain behind `pmpd bench --sync-costs` (sync_costs.cu), as chained launches
// (one block an SM or two) and as one persistent kernel with a grid barrier between phases:
// every phase reads the whole output of the phase before, so a phase that ran ahead of it
// would show in the words.
TEST(Cuda, SyncChainPhasesSeeThePhaseBefore) {
  SKIP_WITHOUT_GPU();
  const int phases = 12, per_block = 40;
  const cuda::SyncChainOutputs got = cuda::run_sync_chain(phases, per_block);
  const size_t total = size_t(got.blocks) * per_block;
  std::vector<uint32_t> want(size_t(phases) * total), before(total);
  for (size_t i = 0; i < total; ++i) before[i] = uint32_t(i);
  for (int p = 0; p < phases; ++p) {
    uint32_t sum = 0;
    for (uint32_t v : before) sum += v;
    for (size_t i = 0; i < total; ++i) want[size_t(p) * total + i] = sum + 7u * uint32_t(i) + uint32_t(p);
    before.assign(want.begin() + ptrdiff_t(size_t(p) * total), want.begin() + ptrdiff_t(size_t(p + 1) * total));
  }
  ASSERT_EQ(got.outputs.size(), std::size(cuda::kCheckedSyncWays));
  for (size_t w = 0; w < got.outputs.size(); ++w) EXPECT_EQ(got.outputs[w], want) << "way " << w;
}

#endif  // PMPD_HAVE_CUDA

}  // namespace
}  // namespace pmpd
