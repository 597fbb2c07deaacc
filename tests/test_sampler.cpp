// The sampler against a plain reference: the whole candidate list sorted, cut and walked in
// order (what sample() computed before it learned to select instead of sort).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>

#include "decode/reference_sampler.h"
#include "decode/sampler.h"

namespace pmpd {
namespace {

std::vector<float> random_logits(std::mt19937& g, int vocab, float spread, bool ties) {
  std::normal_distribution<float> n(0.f, spread);
  std::vector<float> l(static_cast<size_t>(vocab));
  for (auto& x : l) x = ties ? std::round(n(g) * 2.f) / 2.f : n(g);  // ties: many equal logits
  return l;
}

TEST(Sampler, DrawsWhatTheSortingReferenceDraws) {
  std::mt19937 g(7);
  int configs = 0, draws = 0, differ = 0;
  for (int vocab : {1, 2, 9, 130, 5000})
    for (float temp : {0.f, 0.6f, 1.f, 1.8f})
      for (int top_k : {0, 1, 7, 300})
        for (float top_p : {1.f, 0.9f, 0.25f})
          for (float min_p : {0.f, 0.05f})
            for (float penalty : {1.f, 1.3f}) {
              SamplerParams p;
              p.temperature = temp, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p, p.repeat_penalty = penalty;
              p.seed = uint64_t(configs) * 7919u + 1u;
              Sampler s(p);
              ReferenceSampler ref(p);
              const bool ties = configs % 3 == 0;
              const float spread = configs % 2 ? 3.f : 0.7f;
              std::vector<int> history;
              for (int step = 0; step < 12; ++step) {
                std::vector<float> logits = random_logits(g, vocab, spread, ties);
                const int want = ref.sample(logits, history);
                const int got = s.sample(logits.data(), vocab, history);
                differ += got != want;
                ++draws;
                history.push_back(want);
              }
              ++configs;
            }
  // Sums of probabilities taken in another order move a draw's boundaries by ~1e-16 of the
  // total: a different token would need a draw that close to one, so none is expected.
  EXPECT_EQ(differ, 0) << draws << " draws over " << configs << " settings";
}

TEST(Sampler, FollowsTheSoftmaxOfTheKeptCandidates) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 2.0f, -1.0f, 0.0f};
  SamplerParams p;
  p.temperature = 0.8f, p.top_k = 4, p.seed = 11;
  Sampler s(p);
  std::vector<double> want(logits.size(), 0.0);
  double sum = 0;
  for (int t : {1, 3, 0, 2}) sum += want[size_t(t)] = std::exp((logits[size_t(t)] - 2.0) / 0.8);
  for (auto& w : want) w /= sum;
  const int n = 40000;
  std::vector<int> seen(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    auto l = logits;
    ++seen[size_t(s.sample(l.data(), int(l.size()), {}))];
  }
  for (size_t t = 0; t < logits.size(); ++t) {
    const double sd = std::sqrt(want[t] * (1 - want[t]) / n) + 1e-9;
    EXPECT_NEAR(double(seen[t]) / n, want[t], 5 * sd) << "token " << t;
  }
  EXPECT_EQ(seen[4], 0);  // outside the top 4
  EXPECT_EQ(seen[5], 0);
}

TEST(Sampler, CutsLeaveOnlyTheLeadingCandidates) {
  std::mt19937 g(3);
  const std::vector<float> logits = random_logits(g, 20000, 2.f, false);
  const int best = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (auto [top_k, top_p, min_p] : {std::tuple{1, 1.f, 0.f}, std::tuple{0, 1e-6f, 0.f}, std::tuple{0, 1.f, 0.999f}}) {
    SamplerParams p;
    p.temperature = 1.5f, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p, p.seed = 5;
    Sampler s(p);
    for (int i = 0; i < 20; ++i) {
      auto l = logits;
      EXPECT_EQ(s.sample(l.data(), int(l.size()), {}), best) << top_k << " " << top_p << " " << min_p;
    }
  }
}

TEST(Sampler, NanAndInfiniteLogitsNeverWin) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  SamplerParams p;
  p.temperature = 1.f, p.seed = 9;
  Sampler s(p);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> l = {nan, -inf, 0.5f, nan, 0.4f};
    const int t = s.sample(l.data(), int(l.size()), {});
    EXPECT_TRUE(t == 2 || t == 4) << t;
  }
  std::vector<float> none = {-inf, nan, -inf};
  EXPECT_EQ(s.sample(none.data(), 3, {}), 0);  // nothing to draw from: the first token, no crash
  SamplerParams greedy;
  Sampler gs(greedy);
  std::vector<float> l = {0.1f, 3.f, nan, 3.f};
  EXPECT_EQ(gs.sample(l.data(), 4, {}), 1);  // the first largest
}

}  // namespace
}  // namespace pmpd
