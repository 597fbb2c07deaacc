#include "decode/generator.h"

#include <chrono>

#include "core/error.h"

namespace pmpd {

double GenerateResult::average_bits() const {
  if (token_bits.empty()) return 0;
  double s = 0;
  for (int b : token_bits) s += b;
  return s / double(token_bits.size());
}

GenerateResult generate(Transformer& model, const std::vector<int>& prompt, const GenerateOptions& opt,
                        const std::function<bool(int)>& on_token, GenerateResult* live) {
  const ModelConfig& c = model.config();
  PMPD_CHECK(!prompt.empty(), "the prompt is empty (no tokens)");
  PMPD_CHECK(opt.max_new_tokens >= 0, "the number of new tokens must be >= 0");
  const int needed = int(prompt.size()) + opt.max_new_tokens;
  PMPD_CHECK(needed <= c.max_seq_len, "prompt of {} tokens + {} new tokens exceeds the model's context of {}",
             prompt.size(), opt.max_new_tokens, c.max_seq_len);
  KVCache cache(c, opt.context > 0 ? opt.context : needed, opt.kv_f16);
  Sampler sampler(opt.sampler);
  GenerateResult local;
  GenerateResult& r = live ? *live : local;
  r = GenerateResult{};
  r.prompt_tokens = int(prompt.size());
  std::vector<float> logits(size_t(c.vocab_size));
  std::vector<int> history = prompt;
  using clock = std::chrono::steady_clock;

  // Widths: a quantized model runs at the scheduler's widths; a 16-bit one ignores them.
  const bool quantized = model.model().quantized();
  const int top = quantized ? model.model().quant.bits_max : 16;
  auto width = [&](int b) { return !quantized ? 16 : b > 0 ? b : top; };
  auto run_bits = [&](int b) { return quantized ? b : 0; };
  r.prefill_bits = width(opt.scheduler ? opt.scheduler->prefill_bits() : opt.bits);

  auto t0 = clock::now();
  model.forward(prompt.data(), int(prompt.size()), cache, logits.data(), false, run_bits(r.prefill_bits));
  if (opt.scheduler) opt.scheduler->on_prefill(cache, logits.data(), c.vocab_size);
  r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  auto t1 = clock::now();
  int bits = r.prefill_bits;
  // Greedy decoding that nobody needs the logits of takes each step's token from the
  // device's argmax (the same choice as the sampler's: the first largest logit).
  const bool step_logits = opt.scheduler && opt.scheduler->reads_step_logits();
  const bool on_device = sampler.greedy() && !opt.keep_logits && !step_logits;
  // On a GPU the host runs one step behind: the step that consumes token k is queued before
  // token k is read back (its input stays on the device), so the GPU never waits for the
  // host between steps. The scheduler is then asked for step k's width before token k is
  // known, which only schedulers that ignore the step logits allow (on_device says so). A
  // step queued past an end-of-sequence token or a stop is wasted, and waited for below.
  // Other samplers on a GPU run on the device too (Sampler::draw here, pick there): a step
  // brings back its token, not the vocabulary's logits, and no host selection sits between
  // two steps. Their steps are queued ahead as well where a draw needs no token (no
  // repetition penalty): the draws are made in the same order, so the same tokens come.
  const bool device_sampled = !on_device && model.device_model() != nullptr && !opt.keep_logits && !step_logits;
  const bool ahead = model.device_model() != nullptr && (on_device || (device_sampled && sampler.draws_alone()));
  auto queue = [&](int token, int64_t after, int b) {
    if (on_device) return model.queue_step(token, after, cache, run_bits(b));
    const SampleDraw d = sampler.draw(history);
    return model.queue_step(token, after, cache, run_bits(b), &d);
  };
  auto next_width = [&](int step, const float* seen) {
    return width(opt.scheduler ? opt.scheduler->next_bits({step, cache, seen, c.vocab_size}) : opt.bits);
  };
  int next = -1;          // the step's token when the device chose it
  int64_t pending = -1;   // ahead: the queued step whose token comes next
  int64_t wasted = -1;    // ahead: a step queued past the last token
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    if (opt.keep_logits) r.logits.push_back(logits);
    std::vector<float> seen;  // the scheduler sees the logits before sampling modifies them
    if (step_logits) seen = logits;
    int64_t queued = -1;  // ahead: the step consuming this token, queued before the token is read
    int queued_bits = 0;
    if (pending >= 0) {
      if (step + 1 < opt.max_new_tokens) {
        queued_bits = next_width(step, nullptr);
        queued = queue(-1, pending, queued_bits);
      }
      next = model.take_step(pending);
      pending = -1;
    }
    if (next < 0) next = sampler.sample(logits.data(), c.vocab_size, history);
    r.tokens.push_back(next);
    r.token_bits.push_back(bits);
    history.push_back(next);
    bool go_on = !on_token || on_token(next);
    const bool eos = opt.stop_at_eos && next == opt.eos;
    if (eos || !go_on || step + 1 == opt.max_new_tokens) {
      r.hit_eos = eos;
      wasted = queued;
      break;
    }
    if (queued >= 0) {
      pending = queued, bits = queued_bits;
      continue;
    }
    bits = next_width(step, step_logits ? seen.data() : nullptr);
    if (ahead) {
      pending = queue(next, -1, bits);
    } else if (on_device) {
      next = model.forward_greedy(&next, 1, cache, run_bits(bits));
    } else if (device_sampled) {
      next = model.forward_sampled(&next, 1, cache, run_bits(bits), sampler.draw(history));
    } else {
      model.forward(&next, 1, cache, logits.data(), false, run_bits(bits));
      next = -1;
    }
  }
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  if (wasted >= 0) model.take_step(wasted);  // not left running into the caller's next pass
  return live ? *live : r;
}

}  // namespace pmpd
