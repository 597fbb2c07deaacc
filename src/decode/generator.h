// The generation loop: prefill the prompt in one batched pass, then one forward pass
// per new token, until EOS, a stop token or the token limit.
#pragma once
#include <functional>
#include <vector>

#include "decode/sampler.h"
#include "model/transformer.h"
#include "sched/scheduler.h"

namespace pmpd {

struct GenerateOptions {
  int max_new_tokens = 64;
  SamplerParams sampler;
  bool stop_at_eos = true;
  int eos = -1;
  bool keep_logits = false;   // record logits of the last prompt position and every step
  bool kv_f16 = true;
  int context = 0;            // KV cache length; 0: prompt + max_new_tokens
  int bits = 0;               // weight width of a quantized model (0: the highest stored)
  Scheduler* scheduler = nullptr;  // per-step widths; null: `bits` for every pass
};

struct GenerateResult {
  std::vector<int> tokens;                 // generated ids
  std::vector<std::vector<float>> logits;  // [0]: after the prompt, then after each step
  // token_bits[i]: width of the pass whose logits chose token i (token 0: the prefill).
  // 0 means the model's own precision (an unquantized model).
  std::vector<int> token_bits;
  int prefill_bits = 0;
  double average_bits() const;
  double prefill_seconds = 0, decode_seconds = 0;
  int prompt_tokens = 0;
  bool hit_eos = false;
};

// on_token is called for each generated id as soon as it is chosen; returning false
// stops generation.
// `live`, if given, is filled as generation proceeds (so on_token can read the widths).
GenerateResult generate(Transformer& model, const std::vector<int>& prompt, const GenerateOptions& opt,
                        const std::function<bool(int)>& on_token = {}, GenerateResult* live = nullptr);

}  // namespace pmpd
