// One sampled token's draw, everything random about it decided: the sampler's settings,
// the tokens its repetition penalty applies to, and its uniform number. Sampler::draw makes
// one from the sampler's seeded stream; Sampler::pick (host) and the CUDA backend's
// sampling kernel (device) turn it and a row of logits into the same token.
#pragma once
#include <vector>

namespace pmpd {

struct SampleDraw {
  float temperature = 0.f;  // <= 0: the largest logit (after the penalty)
  int top_k = 0;
  float top_p = 1.f, min_p = 0.f, repeat_penalty = 1.f;
  std::vector<int> penalized;  // distinct tokens of the penalty's window
  double u = 0;                // uniform in [0, 1): where in the kept run's mass the token lies
};

}  // namespace pmpd
