// Architectures as data. The paper's four families differ only in a handful of
// switches (norm kind, activation, gated MLP, parallel residual, rotary fraction and
// layout, biases), so one forward pass serves them all, driven by ModelConfig.
#pragma once
#include <string>

#include "core/json_file.h"
#include "io/gguf.h"
#include "io/llama2c.h"

namespace pmpd {

enum class Arch { Llama, Phi, StableLM };
enum class NormKind { RMSNorm, LayerNorm };
enum class Activation { SiLU, GeluTanh };

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;  // as the file names it: llama, mistral, phi, phi2, stablelm
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int vocab_size = 0, max_seq_len = 0;
  int rotary_dim = 0;              // leading dims of each head that rotate
  bool rope_interleaved = false;   // pairs (2i,2i+1) vs (i, i+rotary_dim/2)
  float rope_theta = 10000.f;
  float norm_eps = 1e-5f;
  NormKind norm = NormKind::RMSNorm;
  Activation act = Activation::SiLU;
  bool gated_mlp = true;           // down(act(gate x) * up x) vs down(act(up x))
  bool parallel_residual = false;  // x + attn(ln x) + mlp(ln x)   (Phi)
  bool tied_embeddings = false;

  int kv_dim() const { return n_kv_heads * head_dim; }
  std::string describe() const;
};

const char* arch_family(Arch a);

ModelConfig config_from_hf(const Json& j, const std::string& what);
ModelConfig config_from_gguf(const GgufFile& g);
ModelConfig config_from_llama2c(const Llama2cHeader& h);
// Checks internal consistency (divisibility, ranges); throws naming `what`.
void validate_config(const ModelConfig& c, const std::string& what);

}  // namespace pmpd
