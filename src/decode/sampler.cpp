#include "decode/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
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

namespace {

constexpr float kNone = -std::numeric_limits<float>::infinity();

// Replaces NaN by -inf (a NaN would break the candidates' order; it stands for the least
// likely token) and returns the first largest logit's index. Eight running maxima and no
// index in the loop: a single running argmax is one long dependency chain (~70 us at 32000
// tokens, more than the rest of a top-k draw).
int sanitize_and_argmax(float* logits, int vocab) {
  for (int i = 0; i < vocab; ++i) logits[i] = logits[i] == logits[i] ? logits[i] : kNone;  // NaN != NaN
  float lane[8] = {kNone, kNone, kNone, kNone, kNone, kNone, kNone, kNone};
  int i = 0;
  for (; i + 8 <= vocab; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] = std::max(lane[j], logits[i + j]);
  float mx = kNone;
  for (; i < vocab; ++i) mx = std::max(mx, logits[i]);
  for (float v : lane) mx = std::max(mx, v);
  return int(std::find(logits, logits + vocab, mx) - logits);
}

// A candidate's place in the order as one integer, larger first: the logit's bits made
// monotone in the high word, the complemented token id in the low word (so equal logits
// put the lower id first). Selecting on these is a plain integer comparison, no indirection.
uint32_t monotone_bits(float f) {
  const uint32_t b = f == 0.f ? 0u : std::bit_cast<uint32_t>(f);  // -0 ties with +0, as the floats compare
  const uint32_t sign = uint32_t(int32_t(b) >> 31);               // all ones for a negative
  return b ^ (sign | 0x80000000u);  // branch-free (the key pass vectorizes): ~b or b | top bit
}
uint64_t order_key(float logit, int token) { return uint64_t(monotone_bits(logit)) << 32 | (0xffffffffu - uint32_t(token)); }
int token_of(uint64_t key) { return int(0xffffffffu - uint32_t(key)); }

}  // namespace

int Sampler::crossing(int limit, double target, uint64_t head_floor) {
  const std::greater<uint64_t> before;
  auto mass_of = [&](int from, int to) {
    double mass = 0;
    for (int i = from; i < to; ++i) mass += prob_[size_t(token_of(keys_[size_t(i)]))];
    return mass;
  };
  int lo = 0, hi = limit;
  // First split by value, one linear pass: the candidates at or above head_floor lead the
  // order, and at a few temperatures below the largest logit they hold nearly all the mass,
  // so the selection below usually runs on them alone.
  if (limit > 1024) {
    const int head = int(std::partition(keys_.begin(), keys_.begin() + limit, [&](uint64_t k) { return k >= head_floor; }) -
                         keys_.begin());
    const double mass = mass_of(0, head);
    if (mass >= target) {
      hi = head;
    } else {
      target -= mass;
      lo = head;
    }
  }
  // Narrow [lo, hi) to a short range holding the crossing: the top quarter of the range goes
  // first; where its probabilities reach what is left of the target the crossing lies in it.
  while (hi - lo > 64) {
    const int mid = lo + (hi - lo) / 4;
    std::nth_element(keys_.begin() + lo, keys_.begin() + mid, keys_.begin() + hi, before);
    const double mass = mass_of(lo, mid);
    if (mass >= target) {
      hi = mid;
    } else {
      target -= mass;
      lo = mid;
    }
  }
  std::sort(keys_.begin() + lo, keys_.begin() + hi, before);
  for (int i = lo; i < hi; ++i) {
    target -= prob_[size_t(token_of(keys_[size_t(i)]))];
    if (target <= 0) return i;
  }
  return -1;
}

SampleDraw Sampler::draw(const std::vector<int>& history) {
  SampleDraw d;
  d.temperature = p_.temperature, d.top_k = p_.top_k, d.top_p = p_.top_p, d.min_p = p_.min_p;
  d.repeat_penalty = p_.repeat_penalty;
  if (p_.repeat_penalty != 1.f && p_.repeat_last_n > 0) {
    std::unordered_set<int> seen;
    for (int i = std::max(0, int(history.size()) - p_.repeat_last_n); i < int(history.size()); ++i)
      if (seen.insert(history[size_t(i)]).second) d.penalized.push_back(history[size_t(i)]);
  }
  // What std::uniform_real_distribution<double>(0, total) takes from the stream (sample() drew
  // that before pick() existed, so a seed gives the tokens it gave): r = u * total.
  if (p_.temperature > 0) d.u = std::generate_canonical<double, std::numeric_limits<double>::digits>(rng_);
  return d;
}

int Sampler::pick(float* logits, int vocab, const SampleDraw& d) {
  PMPD_CHECK(vocab > 0, "sampling from an empty vocabulary");
  if (d.repeat_penalty != 1.f)
    for (int t : d.penalized)
      if (t >= 0 && t < vocab) logits[t] = logits[t] > 0 ? logits[t] / d.repeat_penalty : logits[t] * d.repeat_penalty;
  const int best = sanitize_and_argmax(logits, vocab);
  if (d.temperature <= 0 || logits[best] == kNone) return best;
  return sample_cut(logits, vocab, best, d);
}

// pick() past the penalty and the greedy case: the cuts, then the draw.
int Sampler::sample_cut(const float* logits, int vocab, int best, const SampleDraw& d) {
  // The top k candidates at positions [0, k) of keys_ (a few: sorted; many: in no order).
  const std::greater<uint64_t> before;
  const int k = d.top_k > 0 ? std::min(d.top_k, vocab) : vocab;
  if (k <= 1024) {  // one pass of a small heap over token ids, then keys for the k alone
    ids_.resize(size_t(vocab));
    std::iota(ids_.begin(), ids_.end(), 0);
    std::partial_sort(ids_.begin(), ids_.begin() + k, ids_.end(), [&](int a, int b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    keys_.resize(size_t(k));
    for (int i = 0; i < k; ++i) keys_[size_t(i)] = order_key(logits[ids_[size_t(i)]], ids_[size_t(i)]);
  } else {
    keys_.resize(size_t(vocab));
    for (int i = 0; i < vocab; ++i) keys_[size_t(i)] = order_key(logits[i], i);
    if (k < vocab) std::nth_element(keys_.begin(), keys_.begin() + k, keys_.end(), before);
  }
  prob_.resize(size_t(vocab));
  const double mx = logits[best];
  double sum = 0;
  for (int i = 0; i < k; ++i) {
    const int t = token_of(keys_[size_t(i)]);
    sum += prob_[size_t(t)] = std::exp((logits[t] - mx) / d.temperature);
  }
  for (int i = 0; i < k; ++i) prob_[size_t(token_of(keys_[size_t(i)]))] /= sum;
  // Below this logit a candidate's probability is under e^-8 of the largest one's.
  const uint64_t head_floor = uint64_t(monotone_bits(logits[best] - 8.f * d.temperature)) << 32;

  int keep = k;
  if (d.min_p > 0) {  // the candidates of at least min_p times the largest probability lead the order
    const double floor = d.min_p * prob_[size_t(best)];
    auto kept_end = std::partition(keys_.begin(), keys_.begin() + k,
                                   [&](uint64_t key) { return prob_[size_t(token_of(key))] >= floor; });
    keep = std::max(1, int(kept_end - keys_.begin()));  // the largest always passes: min_p < 1
  }
  if (d.top_p < 1) {
    const int i = crossing(keep, d.top_p, head_floor);
    if (i >= 0) keep = i + 1;
  }
  double total = 0;
  for (int i = 0; i < keep; ++i) total += prob_[size_t(token_of(keys_[size_t(i)]))];
  const double r = d.u * total;
  const int i = crossing(keep, r, head_floor);
  if (i >= 0) return token_of(keys_[size_t(i)]);
  // Rounding left r past the run's sum: the run's last candidate, as a walk down it would end.
  std::nth_element(keys_.begin(), keys_.begin() + (keep - 1), keys_.begin() + keep, before);
  return token_of(keys_[size_t(keep - 1)]);
}

}  // namespace pmpd
