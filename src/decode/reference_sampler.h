// The sampler's definition written out the plain way, for tests and benchmarks: every
// candidate sorted (larger logit first, then the lower token id), cut to top-k, softmax,
// min-p, top-p, then the kept run walked with one uniform draw. Sampler (sampler.h) draws
// the same tokens without sorting the vocabulary.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_set>
#include <vector>

#include "decode/sampler.h"

namespace pmpd {

struct ReferenceSampler {
  SamplerParams p;
  std::mt19937_64 rng;
  explicit ReferenceSampler(const SamplerParams& params) : p(params), rng(params.seed) {}
  int sample(std::vector<float> logits, const std::vector<int>& history) {
    const int vocab = int(logits.size());
    if (p.repeat_penalty != 1.f && p.repeat_last_n > 0) {
      std::unordered_set<int> seen;
      for (int i = std::max(0, int(history.size()) - p.repeat_last_n); i < int(history.size()); ++i) {
        const int t = history[size_t(i)];
        if (t < 0 || t >= vocab || !seen.insert(t).second) continue;
        logits[size_t(t)] = logits[size_t(t)] > 0 ? logits[size_t(t)] / p.repeat_penalty : logits[size_t(t)] * p.repeat_penalty;
      }
    }
    std::vector<int> idx(static_cast<size_t>(vocab));
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k = size_t(p.temperature <= 0 ? 1 : p.top_k > 0 ? std::min(p.top_k, vocab) : vocab);
    std::partial_sort(idx.begin(), idx.begin() + ptrdiff_t(k), idx.end(), [&](int a, int b) {
      return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    });
    if (p.temperature <= 0) return idx[0];
    idx.resize(k);
    std::vector<double> prob(idx.size());
    double sum = 0;
    for (size_t i = 0; i < idx.size(); ++i)
      sum += prob[i] = std::exp((logits[size_t(idx[i])] - logits[size_t(idx[0])]) / p.temperature);
    for (auto& x : prob) x /= sum;
    size_t keep = idx.size();
    if (p.min_p > 0)
      while (keep > 1 && prob[keep - 1] < p.min_p * prob[0]) --keep;
    if (p.top_p < 1) {
      double cum = 0;
      for (size_t i = 0; i < keep; ++i)
        if ((cum += prob[i]) >= p.top_p) {
          keep = i + 1;
          break;
        }
    }
    double total = 0;
    for (size_t i = 0; i < keep; ++i) total += prob[i];
    double r = std::uniform_real_distribution<double>(0, total)(rng);
    for (size_t i = 0; i < keep; ++i)
      if ((r -= prob[i]) <= 0) return idx[i];
    return idx[keep - 1];
  }
};

}  // namespace pmpd
