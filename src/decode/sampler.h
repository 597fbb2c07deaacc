// Picks the next token from logits: greedy, or temperature sampling restricted by
// top-k, top-p (nucleus) and min-p, after a repetition penalty. Seeded and therefore
// reproducible.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace pmpd {

struct SamplerParams {
  float temperature = 0.f;  // <= 0: greedy
  int top_k = 0;            // 0: off
  float top_p = 1.f;        // 1: off
  float min_p = 0.f;        // 0: off
  float repeat_penalty = 1.f;  // 1: off (CTRL-style: divide positive logits, multiply negative)
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // `history` is the tokens so far (for the repetition penalty). Modifies logits.
  int sample(float* logits, int vocab, const std::vector<int>& history);
  // Whether sample() is the plain argmax (no temperature, no repetition penalty), which
  // the model can take on the device.
  bool greedy() const { return p_.temperature <= 0 && (p_.repeat_penalty == 1.f || p_.repeat_last_n == 0); }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
};

void validate_sampler_params(const SamplerParams& p);

}  // namespace pmpd
