// A decode step's attention for the query heads of one KV head over a 16-bit KV cache: the
// kernel (attend_f16: the dot inlined, the output in registers, the group's heads reading
// each block of rows in turn) against the loop it replaced (attend_f16_per_row head by
// head: a dot() call and an add_scaled_f16() call per cached position), both measured in
// the same run. Args: kernel (0: per row, 1: attend_f16), head size, context length, query
// heads on the KV head (1: no GQA). Rows are 8 KV heads apart, as in a model with 8 KV heads.
//   ./build/bench/pmpd_bench --benchmark_filter=DecodeAttention
// Below it, BM_SoftmaxExp: the softmax's exponential, libm against kernels::exp_inplace.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/exp.h"

using namespace pmpd;

namespace {

void BM_DecodeAttention(benchmark::State& state) {
  const bool kernel = state.range(0) == 1;
  const int hd = int(state.range(1)), len = int(state.range(2)), heads = int(state.range(3));
  const int64_t stride = 8 * int64_t(hd);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<uint16_t> k(size_t(len) * size_t(stride)), v(k.size());
  for (auto& e : k) e = f32_to_f16(normal(rng));
  for (auto& e : v) e = f32_to_f16(normal(rng));
  std::vector<float> q(size_t(heads) * size_t(hd)), scores(size_t(heads) * size_t(len)), out(q.size());
  for (auto& e : q) e = normal(rng);
  for (auto _ : state) {
    if (kernel)
      kernels::attend_f16(q.data(), heads, k.data(), v.data(), stride, len, hd, 0.125f, scores.data(), out.data());
    else
      for (int g = 0; g < heads; ++g)
        kernels::attend_f16_per_row(&q[size_t(g * hd)], k.data(), v.data(), stride, len, hd, 0.125f, scores.data(),
                                    &out[size_t(g * hd)]);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * len * heads);  // head-positions a second
}

}  // namespace

BENCHMARK(BM_DecodeAttention)
    ->ArgsProduct({{0, 1}, {64, 128}, {128, 512, 2048}, {1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
// Grouped heads (4 query heads a KV head, as Mistral-7B and TinyLlama; hd 128) over
// contexts whose 8 heads' rows outgrow the caches: 8K positions are 32 MB of keys and values.
BENCHMARK(BM_DecodeAttention)
    ->ArgsProduct({{0, 1}, {128}, {512, 8192}, {1, 4}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

namespace {

// The softmax's exponential over one head's scores: libm's expf a float (arg 0) against
// kernels::exp_inplace on the active ISA (arg 1); the same bits either way (tests/test_kernels.cpp).
void BM_SoftmaxExp(benchmark::State& state) {
  const bool kernel = state.range(0) == 1;
  const int len = int(state.range(1));
  std::vector<float> x(static_cast<size_t>(len)), y(x.size());
  for (int i = 0; i < len; ++i) x[size_t(i)] = -0.03f * float(i);
  for (auto _ : state) {
    y = x;
    if (kernel) kernels::exp_inplace(y.data(), len);
    else
      for (auto& v : y) v = std::exp(v);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * len);
}

}  // namespace

BENCHMARK(BM_SoftmaxExp)->ArgsProduct({{0, 1}, {64, 512, 4096}})->Unit(benchmark::kMicrosecond);
