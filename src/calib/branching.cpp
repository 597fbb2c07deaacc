#include "calib/branching.h"

#include "core/error.h"
#include "eval/stop_text.h"

namespace pmpd::calib {

double GreedyOutput::average_bits() const {
  if (token_bits.empty()) return 0;
  double s = 0;
  for (int b : token_bits) s += b;
  return s / double(token_bits.size());
}

namespace {

struct State {
  KVCache cache;
  GreedyOutput out;
  eval::StopText text;
  bool done = false;
};

// Appends the greedy token of a pass at `bits` (Transformer::forward_greedy: the first
// maximum, as the sampler picks it; on the GPU only the token comes back); ends the
// generation on EOS, a stop string or the limit.
void take_token(State& s, int id, int bits, const TaskLimits& lim) {
  s.out.tokens.push_back(id);
  s.out.token_bits.push_back(bits);
  bool go_on = s.text.push(id);
  if (id == lim.tok->eos() || !go_on || int(s.out.tokens.size()) >= lim.max_new_tokens) s.done = true;
}

void decode_step(Transformer& tf, State& s, int bits, const TaskLimits& lim, long long& passes) {
  int last = s.out.tokens.back();
  const int id = tf.forward_greedy(&last, 1, s.cache, bits);
  ++passes;
  take_token(s, id, bits, lim);
}

// Runs a generation to its end at `bits`. On a GPU the host stays one step behind
// (Transformer::queue_step, as generate() does): the next step is queued before this step's
// token is read back, so the GPU does not wait for the host between steps; a step queued past
// the end is waited for (the stream is idle when the next branch forks) and not counted.
void run_to_end(Transformer& tf, State& s, int bits, const TaskLimits& lim, long long& passes) {
  if (!tf.device_model()) {
    while (!s.done) decode_step(tf, s, bits, lim, passes);
    return;
  }
  if (s.done) return;
  int64_t pending = tf.queue_step(s.out.tokens.back(), -1, s.cache, bits);
  for (;;) {
    const bool room = int(s.out.tokens.size()) + 1 < lim.max_new_tokens;  // a token after pending's
    const int64_t queued = room ? tf.queue_step(-1, pending, s.cache, bits) : -1;
    ++passes;
    take_token(s, tf.take_step(pending), bits, lim);
    if (s.done) {
      if (queued >= 0) tf.take_step(queued);
      return;
    }
    pending = queued;
  }
}

}  // namespace

std::vector<GreedyOutput> generate_with_branches(Transformer& tf, const std::vector<int>& prompt, int prefill_bits,
                                                 const PrecisionSchedule& base, const std::vector<Branch>& branches,
                                                 const TaskLimits& lim, PassCount* count) {
  PMPD_CHECK(lim.tok, "generate_with_branches: no tokenizer");
  PMPD_CHECK(!prompt.empty(), "the prompt is empty (no tokens)");
  PMPD_CHECK(lim.max_new_tokens >= 1, "max_new_tokens must be >= 1");
  for (size_t i = 0; i < branches.size(); ++i)
    PMPD_CHECK(branches[i].step >= 0 && (i == 0 || branches[i].step >= branches[i - 1].step),
               "branch steps must be >= 0 and sorted");
  const ModelConfig& c = tf.config();
  const int needed = int(prompt.size()) + lim.max_new_tokens;
  PMPD_CHECK(needed <= c.max_seq_len, "prompt of {} tokens + {} new tokens exceeds the model's context of {}",
             prompt.size(), lim.max_new_tokens, c.max_seq_len);

  long long passes = 0;
  State s{KVCache(c, needed, true), {}, eval::StopText(*lim.tok, lim.stop)};
  const int first = tf.forward_greedy(prompt.data(), int(prompt.size()), s.cache, prefill_bits);
  ++passes;
  take_token(s, first, prefill_bits, lim);

  std::vector<GreedyOutput> out(branches.size() + 1);
  size_t next = 0;
  for (int k = 0;; ++k) {
    // Branches that drop at step k fork from the base state before its step k.
    for (; next < branches.size() && branches[next].step == k && !s.done; ++next) {
      State b = s;
      run_to_end(tf, b, branches[next].bits, lim, passes);
      b.out.text = b.text.text();
      out[next + 1] = std::move(b.out);
    }
    if (s.done) break;
    decode_step(tf, s, base.bits_at(k), lim, passes);
  }
  s.out.text = s.text.text();
  for (; next < branches.size(); ++next) out[next + 1] = s.out;  // the base ended before their step
  out[0] = std::move(s.out);
  if (count) {
    count->passes += passes;
    for (auto& o : out) count->without_sharing += (long long)o.tokens.size();  // prefill + one pass per later token
  }
  return out;
}

}  // namespace pmpd::calib
