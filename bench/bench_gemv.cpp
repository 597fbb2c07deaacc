// GEMV throughput per weight format, reported as GB/s of weights read and as a fraction
// of this machine's read bandwidth measured in the same run (a streaming sum over 1 GiB
// on all cores). Shapes: 4096x4096 and 11008x4096 (Llama-7B projections).
//   ./build/bench/pmpd_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/bitplane.h"
#include "kernels/cpu/dot.h"

using namespace pmpd;

namespace {

void BM_ReadBandwidth(benchmark::State& state) {
  const size_t n = size_t(1) << 28;  // 2^28 floats = 1 GiB
  static std::vector<float> buf(n, 1.0f);
  double total = 0;
  for (auto _ : state) {
    float s = 0;
#pragma omp parallel reduction(+ : s)
    {
      // Eight independent vector accumulators per thread so the adds never limit the loads.
      float acc[8][16] = {};
#pragma omp for schedule(static)
      for (size_t i = 0; i < n; i += 128)
        for (int a = 0; a < 8; ++a)
#pragma omp simd
          for (int l = 0; l < 16; ++l) acc[a][l] += buf[i + size_t(a) * 16 + size_t(l)];
      for (auto& a : acc)
        for (float v : a) s += v;
    }
    benchmark::DoNotOptimize(s);
    total += double(n) * 4;
  }
  state.SetBytesProcessed(int64_t(total));




}

void report(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
  state.counters["weight_MB"] = double(bytes) / 1e6;
}

struct Shape {
  int64_t rows, cols;
};
// 7B projections, then pmpd-small's q|k|v (384 columns: a partial 256-column block), down,
// and one of its q, k, v, o; then pmpd-tiny's LM head.
constexpr Shape kShapes[] = {{4096, 4096}, {11008, 4096}, {1152, 384}, {384, 1024}, {384, 384}, {4096, 256}};

void BM_GemvDense(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  const DType t = state.range(1) == 32 ? DType::F32 : DType::F16;
  std::vector<uint8_t> w(size_t(s.rows * s.cols) * dtype_size(t));
  std::mt19937 rng(1);
  for (size_t i = 0; i < w.size(); i += 2) {
    uint16_t v = f32_to_f16(std::normal_distribution<float>(0, 0.02f)(rng));
    std::memcpy(&w[i], &v, 2);
  }
  if (t == DType::F32)
    for (size_t i = 0; i < w.size(); i += 4) {
      float f = 0.01f;
      std::memcpy(&w[i], &f, 4);
    }
  TensorView W{"w", t, {s.rows, s.cols}, w.data()};
  std::vector<float> x(size_t(s.cols), 0.5f), y(size_t(s.rows));
  for (auto _ : state) {
    kernels::matmul(W, x.data(), 1, y.data());
    benchmark::ClobberMemory();
  }
  report(state, w.size());
}

// A one-token product row by row on one thread: dot() called per row (arg 0) against
// dot_rows (arg 1), which runs the same dot inline over a block of rows. Shape 5: the
// default model's 16-bit LM head (4096 x 256), whose rows are too short for a call per row.
void BM_DenseRows(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  const bool blocked = state.range(1) == 1;
  std::vector<uint16_t> w(size_t(s.rows * s.cols));
  std::mt19937 rng(1);
  for (auto& e : w) e = f32_to_f16(std::normal_distribution<float>(0, 0.02f)(rng));
  std::vector<float> x(size_t(s.cols), 0.5f), y(size_t(s.rows));
  for (auto _ : state) {
    if (blocked) kernels::dot_rows(DType::F16, w.data(), s.rows, x.data(), s.cols, y.data());
    else
      for (int64_t r = 0; r < s.rows; ++r) y[size_t(r)] = kernels::dot(DType::F16, &w[size_t(r * s.cols)], x.data(), s.cols);
    benchmark::ClobberMemory();
  }
  report(state, w.size() * 2);
}

// A random 2..8-bit nested matrix of the given shape (the speed does not depend on the values).
struct RandomBitplane {
  kernels::BitPlaneMatrix m;
  std::vector<uint8_t> planes;
  std::vector<std::vector<uint16_t>> tables;
  explicit RandomBitplane(Shape s) {
    m.rows = s.rows, m.cols = s.cols, m.bits_min = 2, m.bits_max = 8;
    m.plane_stride = kernels::BitPlaneMatrix::stride_for(s.cols);
    planes.resize(size_t(8) * size_t(s.rows) * size_t(m.plane_stride));
    std::mt19937 rng(2);
    for (auto& p : planes) p = uint8_t(rng());
    for (int b = 2; b <= 8; ++b) {
      tables.emplace_back(size_t(s.rows) << b);
      for (size_t i = 0; i < tables.back().size(); ++i) tables.back()[i] = f32_to_f16(0.001f * float(i % (1 << b)));
      m.tables.push_back(tables.back().data());
    }
    m.planes = planes.data();
    kernels::prepare_int8(m);
  }
};

void BM_GemvBitplane(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  const int bits = int(state.range(1));
  RandomBitplane w(s);
  kernels::set_bitplane_kernel(state.range(2) ? kernels::BitPlaneKernel::Int8 : kernels::BitPlaneKernel::Exact);
  std::vector<float> x(size_t(s.cols), 0.5f), y(size_t(s.rows));
  for (auto _ : state) {
    kernels::bitplane_matmul(w.m, bits, x.data(), 1, y.data());
    benchmark::ClobberMemory();
  }
  report(state, w.m.bytes_read(bits));
}

// A layer's q, k and v (three matrices of one shape, one input) at 3 bits with the integer
// kernel: one product each (path 0: x quantized and the thread team woken three times)
// against bitplane_matvec_many (path 1: once). Args: shape, path.
void BM_GemvThreeOfOneInput(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  RandomBitplane q(s), k(s), v(s);
  kernels::set_bitplane_kernel(kernels::BitPlaneKernel::Int8);
  std::vector<float> x(size_t(s.cols), 0.5f), y(size_t(3 * s.rows));
  float* const out[3] = {y.data(), y.data() + s.rows, y.data() + 2 * s.rows};
  const kernels::BitPlaneMatrix* const ms[3] = {&q.m, &k.m, &v.m};
  for (auto _ : state) {
    if (state.range(1)) {
      kernels::bitplane_matvec_many(ms, 3, x.data(), out);
    } else {
      kernels::bitplane_matmul(q.m, 3, x.data(), 1, out[0]);
      kernels::bitplane_matmul(k.m, 3, x.data(), 1, out[1]);
      kernels::bitplane_matmul(v.m, 3, x.data(), 1, out[2]);
    }
    benchmark::ClobberMemory();
  }
  report(state, 3 * q.m.bytes_read(3));
}

// The byte tables of every width (2..8) of one 11008x4096 matrix: what a model's load
// built for every quantized matrix before tables were built per width on first use (a 7B
// model's 224 matrices hold 1.35 M rows, 123 times this one's 11008).
void BM_PrepareInt8(benchmark::State& state) {
  RandomBitplane w(kShapes[1]);
  for (auto _ : state) {
    kernels::prepare_int8(w.m);
    for (int b = w.m.bits_min; b <= w.m.bits_max; ++b) benchmark::DoNotOptimize(kernels::int8_width(w.m, b).bytes);
  }
}
BENCHMARK(BM_PrepareInt8)->Unit(benchmark::kMillisecond)->UseRealTime();

// A prompt of several tokens through one matrix: the library's path (rows widened a block
// at a time, register tiles over rows and tokens) against the row-by-row products it
// replaced (each row widened, then one dot() per token), same sums bit for bit.
// Args: shape, bits (16: f16 weights), tokens, path (0 row by row, 1 library).
void BM_Prompt(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  const int bits = int(state.range(1)), tokens = int(state.range(2));
  const bool library = state.range(3) != 0;
  RandomBitplane q(s);
  std::vector<uint16_t> h(size_t(s.rows * s.cols));
  std::mt19937 rng(3);
  for (auto& v : h) v = f32_to_f16(std::normal_distribution<float>(0, 0.02f)(rng));
  TensorView W{"w", DType::F16, {s.rows, s.cols}, h.data()};
  std::vector<float> x(size_t(tokens * s.cols)), y(size_t(tokens * s.rows));
  for (auto& v : x) v = std::normal_distribution<float>(0, 1)(rng);
  for (auto _ : state) {
    if (library) {
      if (bits == 16) kernels::matmul(W, x.data(), tokens, y.data());
      else kernels::bitplane_matmul(q.m, bits, x.data(), tokens, y.data());
    } else {
#pragma omp parallel
      {
        std::vector<float> row(size_t(s.cols));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < s.rows; ++r) {
          if (bits == 16) to_f32(DType::F16, W.row_ptr(r), row.data(), size_t(s.cols));
          else kernels::bitplane_dequant_row(q.m, bits, r, row.data());
          for (int t = 0; t < tokens; ++t)
            y[size_t(t * s.rows + r)] = kernels::dot(DType::F32, row.data(), x.data() + t * s.cols, s.cols);
        }
      }
    }
    benchmark::ClobberMemory();
  }
  state.counters["tokens/s"] = benchmark::Counter(double(state.iterations()) * tokens, benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemvDense)->ArgsProduct({{0, 1}, {32, 16}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_GemvBitplane)->ArgsProduct({{0, 1}, {2, 3, 4, 5, 6, 7, 8}, {0, 1}})->Unit(benchmark::kMicrosecond)->UseRealTime();
// Small matrices, where a row's fixed cost and a partial last block weigh most.
BENCHMARK(BM_GemvBitplane)->ArgsProduct({{2, 3, 4}, {2, 3, 4, 8}, {1}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_DenseRows)->ArgsProduct({{5, 0}, {0, 1}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_GemvThreeOfOneInput)->ArgsProduct({{4, 0}, {0, 1}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Prompt)
    ->ArgsProduct({{0, 1}, {16, 8, 3}, {32}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_MAIN();
