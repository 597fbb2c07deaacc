// A decode step's attention for one query head over a 16-bit KV cache: the kernel
// (attend_f16: the dot inlined, the output in registers) against the loop it replaced
// (attend_f16_per_row: a dot() call and an add_scaled_f16() call per cached position),
// both measured in the same run. Args: kernel (0: per row, 1: attend_f16), head size,
// context length. Rows are 4 KV heads apart, as in a model with 4 KV heads.
//   ./build/bench/pmpd_bench --benchmark_filter=DecodeAttention
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/attention.h"

using namespace pmpd;

namespace {

void BM_DecodeAttention(benchmark::State& state) {
  const bool kernel = state.range(0) == 1;
  const int hd = int(state.range(1)), len = int(state.range(2));
  const int64_t stride = 4 * int64_t(hd);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<uint16_t> k(size_t(len) * size_t(stride)), v(k.size());
  for (auto& e : k) e = f32_to_f16(normal(rng));
  for (auto& e : v) e = f32_to_f16(normal(rng));
  std::vector<float> q(static_cast<size_t>(hd)), scores(static_cast<size_t>(len)), out(static_cast<size_t>(hd));
  for (auto& e : q) e = normal(rng);
  for (auto _ : state) {
    if (kernel) kernels::attend_f16(q.data(), k.data(), v.data(), stride, len, hd, 0.125f, scores.data(), out.data());
    else kernels::attend_f16_per_row(q.data(), k.data(), v.data(), stride, len, hd, 0.125f, scores.data(), out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * len);  // positions a second
}

}  // namespace

BENCHMARK(BM_DecodeAttention)
    ->ArgsProduct({{0, 1}, {64, 128}, {128, 512, 2048}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
