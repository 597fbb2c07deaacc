#include "decode/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "core/error.h"

namespace pmpd {

void validate_sampler_params(const SamplerParams& p) {
  PMPD_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, "temperature must be >= 0 (got {})", p.temperature);
  PMPD_CHECK(p.top_k >= 0, "top-k must be >= 0 (got {})", p.top_k);
  PMPD_CHECK(p.top_p > 0 && p.top_p <= 1, "top-p must be in (0, 1] (got {})", p.top_p);
  PMPD_CHECK(p.min_p >= 0 && p.min_p < 1, "min-p must be in [0, 1) (got {})", p.min_p);
  PMPD_CHECK(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0, "repeat penalty must be > 0 (got {})",
             p.repeat_penalty);
  PMPD_CHECK(p.repeat_last_n >= 0, "repeat-last-n must be >= 0");
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) { validate_sampler_params(p); }

int Sampler::sample(float* logits, int vocab, const std::vector<int>& history) {
  if (p_.repeat_penalty != 1.f && p_.repeat_last_n > 0) {
    std::unordered_set<int> seen;
    int from = std::max(0, int(history.size()) - p_.repeat_last_n);
    for (int i = from; i < int(history.size()); ++i) {
      int t = history[size_t(i)];
      if (t < 0 || t >= vocab || !seen.insert(t).second) continue;
      logits[t] = logits[t] > 0 ? logits[t] / p_.repeat_penalty : logits[t] * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0) return int(std::max_element(logits, logits + vocab) - logits);

  // Candidates sorted by logit, then cut by top-k, softmax, min-p and top-p.
  std::vector<int> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  int k = p_.top_k > 0 ? std::min(p_.top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  idx.resize(size_t(k));
  std::vector<double> prob(idx.size());
  double mx = logits[idx[0]], sum = 0;
  for (size_t i = 0; i < idx.size(); ++i) sum += prob[i] = std::exp((logits[idx[i]] - mx) / p_.temperature);
  for (auto& pr : prob) pr /= sum;
  size_t keep = idx.size();
  if (p_.min_p > 0)
    while (keep > 1 && prob[keep - 1] < p_.min_p * prob[0]) --keep;
  if (p_.top_p < 1) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  double r = std::uniform_real_distribution<double>(0, total)(rng_);
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace pmpd
