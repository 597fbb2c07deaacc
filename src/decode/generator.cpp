#include "decode/generator.h"

#include <chrono>

#include "core/error.h"

namespace pmpd {

GenerateResult generate(Transformer& model, const std::vector<int>& prompt, const GenerateOptions& opt,
                        const std::function<bool(int)>& on_token) {
  const ModelConfig& c = model.config();
  PMPD_CHECK(!prompt.empty(), "the prompt is empty (no tokens)");
  PMPD_CHECK(opt.max_new_tokens >= 0, "the number of new tokens must be >= 0");
  const int needed = int(prompt.size()) + opt.max_new_tokens;
  PMPD_CHECK(needed <= c.max_seq_len, "prompt of {} tokens + {} new tokens exceeds the model's context of {}",
             prompt.size(), opt.max_new_tokens, c.max_seq_len);
  KVCache cache(c, opt.context > 0 ? opt.context : needed, opt.kv_f16);
  Sampler sampler(opt.sampler);
  GenerateResult r;
  r.prompt_tokens = int(prompt.size());
  std::vector<float> logits(size_t(c.vocab_size));
  std::vector<int> history = prompt;
  using clock = std::chrono::steady_clock;

  auto t0 = clock::now();
  model.forward(prompt.data(), int(prompt.size()), cache, logits.data(), false, opt.bits);
  r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  auto t1 = clock::now();
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    if (opt.keep_logits) r.logits.push_back(logits);
    int next = sampler.sample(logits.data(), c.vocab_size, history);
    r.tokens.push_back(next);
    history.push_back(next);
    bool go_on = !on_token || on_token(next);
    if (opt.stop_at_eos && next == opt.eos) {
      r.hit_eos = true;
      break;
    }
    if (!go_on || step + 1 == opt.max_new_tokens) break;
    model.forward(&next, 1, cache, logits.data(), false, opt.bits);
  }
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace pmpd
