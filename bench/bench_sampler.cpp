// A sampled token's cost on the host at a 32000-token vocabulary: Sampler (selection over ever
// smaller ranges) against the sampler's definition run the plain way (every candidate sorted,
// ReferenceSampler), measured in the same run, for the server's default (temperature 1, no
// top-k, no top-p) and the usual cuts. Both draw the same tokens (tests/test_sampler.cpp).
//   ./build/bench/pmpd_bench --benchmark_filter=Sample
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "decode/reference_sampler.h"
#include "decode/sampler.h"

using namespace pmpd;

namespace {

constexpr int kVocab = 32000;

// Logits shaped like a language model's: a broad bulk and a few tokens well above it.
const std::vector<float>& test_logits() {
  static const std::vector<float> logits = [] {
    std::mt19937 g(1);
    std::normal_distribution<float> bulk(0.f, 2.5f);
    std::vector<float> l(kVocab);
    for (auto& x : l) x = bulk(g);
    for (int i = 0; i < 20; ++i) l[size_t(g() % kVocab)] += 8.f + float(i % 5);
    return l;
  }();
  return logits;
}

SamplerParams params_of(const benchmark::State& state) {
  SamplerParams p;
  p.temperature = 1.f, p.top_k = int(state.range(0)), p.top_p = float(state.range(1)) / 100.f, p.seed = 42;
  return p;
}

void BM_SampleSelect(benchmark::State& state) {
  Sampler s(params_of(state));
  std::vector<float> logits(kVocab);
  const std::vector<int> history;
  for (auto _ : state) {
    logits = test_logits();  // sample() modifies its logits (the reference copies them too)
    benchmark::DoNotOptimize(s.sample(logits.data(), kVocab, history));
  }
}

void BM_SampleFullSort(benchmark::State& state) {
  ReferenceSampler s(params_of(state));
  const std::vector<int> history;
  for (auto _ : state) benchmark::DoNotOptimize(s.sample(test_logits(), history));
}

// Args: top-k (0: off), top-p in percent (100: off).
BENCHMARK(BM_SampleSelect)->ArgsProduct({{0, 40}, {100, 90}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleFullSort)->ArgsProduct({{0, 40}, {100, 90}})->Unit(benchmark::kMicrosecond);

}  // namespace
