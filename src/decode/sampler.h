// Picks the next token from logits: greedy, or temperature sampling restricted by
// top-k, top-p (nucleus) and min-p, after a repetition penalty. Seeded and therefore
// reproducible.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "decode/sample_draw.h"

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

// What sample() draws from: the candidates in order of decreasing logit (ties: lower token
// id first), cut to the top k, softmax at the temperature over those, then cut to the
// tokens of at least min_p times the largest probability, then to the shortest run whose
// probabilities sum to top_p; a uniform draw r in [0, the run's sum) picks the first
// candidate where the run's running sum reaches r. It finds that candidate without sorting
// the vocabulary (selection over ever smaller ranges: ~O(vocab) a token, where the full sort
// took ~4 ms a token at 32000 tokens).
class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // `history` is the tokens so far (for the repetition penalty). Modifies logits.
  int sample(float* logits, int vocab, const std::vector<int>& history) { return pick(logits, vocab, draw(history)); }
  // sample() in two halves: what is random about the next token, taken from the seeded
  // stream (one uniform number a token where the temperature is above 0), then the token
  // that draw and a row of logits give (modifies logits). The CUDA backend runs pick() on
  // the device (cuda::sample_token) from a draw made here.
  SampleDraw draw(const std::vector<int>& history);
  int pick(float* logits, int vocab, const SampleDraw& d);
  // Whether sample() is the plain argmax (no temperature, no repetition penalty), which
  // the model can take on the device.
  bool greedy() const { return p_.temperature <= 0 && draws_alone(); }
  // Whether a draw needs none of the tokens so far (no repetition penalty): the next step's
  // draw can then be made before this step's token is known.
  bool draws_alone() const { return p_.repeat_penalty == 1.f || p_.repeat_last_n == 0; }

 private:
  // The first position i < limit of the candidates in decreasing order whose running sum
  // of probabilities reaches `target`, or -1; positions [0, limit) of keys_ must hold the
  // top `limit` candidates (in any order). Leaves positions [0, i] holding the top i + 1.
  // head_floor: a key that splits off the few candidates holding most of the mass (any
  // value gives the same answer).
  int crossing(int limit, double target, uint64_t head_floor);
  int sample_cut(const float* logits, int vocab, int best, const SampleDraw& d);

  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<uint64_t> keys_;  // candidates as order keys (logit, then token id), partly ordered
  std::vector<double> prob_;    // by token id: the candidate's probability (top k only)
  std::vector<int> ids_;        // token ids, for a small top k
};

void validate_sampler_params(const SamplerParams& p);

}  // namespace pmpd
