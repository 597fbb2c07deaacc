// llama2.c checkpoints (Karpathy's run.c): the legacy format (7 int32 header, then f32
// weights; a negative vocab_size means an untied classifier) and version 1 ("ak42"
// magic, 256-byte header). Tensors are exposed under GGUF names (token_embd.weight,
// blk.N.attn_q.weight, ...), the names the model code uses for every format.
#pragma once
#include <string>
#include <vector>

#include "io/tensor_set.h"

namespace pmpd {

struct Llama2cHeader {
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;
  int version;  // 0 = legacy
};

Llama2cHeader read_llama2c(const std::string& path, TensorSet& out);

// llama2.c's tokenizer.bin: max_token_length, then per token a float score, an int32
// length and the bytes.
struct Llama2cVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
};
Llama2cVocab read_llama2c_tokenizer(const std::string& path, int vocab_size);

}  // namespace pmpd
