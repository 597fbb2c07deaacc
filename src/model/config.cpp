#include "model/config.h"

#include <cmath>

#include "core/error.h"

namespace pmpd {

namespace {

// Family defaults; individual config fields override them.
void apply_family(ModelConfig& c) {
  switch (c.arch) {
    case Arch::Llama:
      c.norm = NormKind::RMSNorm, c.act = Activation::SiLU, c.gated_mlp = true, c.parallel_residual = false;
      break;
    case Arch::Phi:
      c.norm = NormKind::LayerNorm, c.act = Activation::GeluTanh, c.gated_mlp = false, c.parallel_residual = true;
      break;
    case Arch::StableLM:
      c.norm = NormKind::LayerNorm, c.act = Activation::SiLU, c.gated_mlp = true, c.parallel_residual = false;
      break;
  }
}

Activation parse_act(const std::string& s, const std::string& what) {
  if (s == "silu" || s == "swish") return Activation::SiLU;
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast") return Activation::GeluTanh;
  fail("{}: activation \"{}\" is not supported (silu, gelu_new, gelu_pytorch_tanh)", what, s);
}

}  // namespace

const char* arch_family(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Phi: return "phi";
    case Arch::StableLM: return "stablelm";
  }
  return "?";
}

std::string ModelConfig::describe() const {
  return fmt::format(
      "{} ({}): dim {}, layers {}, heads {} (kv {}), head_dim {}, ffn {}, vocab {}, ctx {}, rotary {}/{} {}, "
      "theta {}, {} eps {}, {}{}{}{}",
      arch_name, arch_family(arch), dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size,
      max_seq_len, rotary_dim, head_dim, rope_interleaved ? "interleaved" : "neox", rope_theta,
      norm == NormKind::RMSNorm ? "rmsnorm" : "layernorm", norm_eps, act == Activation::SiLU ? "silu" : "gelu",
      gated_mlp ? ", gated mlp" : "", parallel_residual ? ", parallel residual" : "",
      tied_embeddings ? ", tied embeddings" : "");
}

ModelConfig config_from_hf(const Json& j, const std::string& what) {
  ModelConfig c;
  std::string mt = json_get<std::string>(j, "model_type", what);
  c.arch_name = mt;
  if (mt == "llama" || mt == "mistral") c.arch = Arch::Llama;
  else if (mt == "phi") c.arch = Arch::Phi;
  else if (mt == "stablelm") c.arch = Arch::StableLM;
  else fail("{}: model_type \"{}\" is not supported (llama, mistral, phi, stablelm)", what, mt);
  apply_family(c);
  c.dim = json_get<int>(j, "hidden_size", what);
  c.hidden_dim = json_get<int>(j, "intermediate_size", what);
  c.n_layers = json_get<int>(j, "num_hidden_layers", what);
  c.n_heads = json_get<int>(j, "num_attention_heads", what);
  c.n_kv_heads = json_get_or<int>(j, "num_key_value_heads", c.n_heads, what);
  c.vocab_size = json_get<int>(j, "vocab_size", what);
  c.max_seq_len = json_get_or<int>(j, "max_position_embeddings", 2048, what);
  PMPD_CHECK(c.n_heads > 0 && c.dim % c.n_heads == 0, "{}: hidden_size {} not divisible by {} heads", what, c.dim, c.n_heads);
  c.head_dim = json_get_or<int>(j, "head_dim", c.dim / c.n_heads, what);
  // Rotary settings: top-level fields (transformers 4.x) or "rope_parameters" (5.x).
  double rot = json_get_or<double>(j, "partial_rotary_factor", 1.0, what);
  double theta = json_get_or<double>(j, "rope_theta", 10000.0, what);
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    const Json& rp = j[key];
    PMPD_CHECK(rp.is_object(), "{}: {} is not an object", what, key);
    std::string type = json_get_or<std::string>(rp, "rope_type", json_get_or<std::string>(rp, "type", "default", what), what);
    PMPD_CHECK(type == "default", "{}: rope type \"{}\" is not supported (default only)", what, type);
    theta = json_get_or<double>(rp, "rope_theta", theta, what);
    rot = json_get_or<double>(rp, "partial_rotary_factor", rot, what);
  }
  PMPD_CHECK(rot > 0 && rot <= 1, "{}: partial_rotary_factor {} outside (0, 1]", what, rot);
  c.rotary_dim = int(std::lround(c.head_dim * rot));
  c.rope_theta = float(theta);
  c.tied_embeddings = json_get_or<bool>(j, "tie_word_embeddings", false, what);
  std::string act = json_get_or<std::string>(j, "hidden_act", c.act == Activation::SiLU ? "silu" : "gelu_new", what);
  c.act = parse_act(act, what);
  if (c.norm == NormKind::RMSNorm) c.norm_eps = float(json_get_or<double>(j, "rms_norm_eps", 1e-6, what));
  else c.norm_eps = float(json_get_or<double>(j, "layer_norm_eps", 1e-5, what));
  if (c.arch == Arch::StableLM) {
    c.parallel_residual = json_get_or<bool>(j, "use_parallel_residual", false, what);
    PMPD_CHECK(!json_get_or<bool>(j, "qk_layernorm", false, what), "{}: qk_layernorm is not supported", what);
  }
  if (c.arch == Arch::Phi)
    PMPD_CHECK(!json_get_or<bool>(j, "qk_layernorm", false, what), "{}: qk_layernorm is not supported", what);
  c.rope_interleaved = false;  // transformers uses rotate_half for every family here
  validate_config(c, what);
  return c;
}

ModelConfig config_from_gguf(const GgufFile& g) {
  const std::string& what = g.tensors.source;
  auto* a = g.find("general.architecture");
  PMPD_CHECK(a, "{}: general.architecture missing", what);
  ModelConfig c;
  c.arch_name = a->as_string();
  const std::string& arch = c.arch_name;
  if (arch == "llama") c.arch = Arch::Llama;
  else if (arch == "phi2") c.arch = Arch::Phi;
  else if (arch == "stablelm") c.arch = Arch::StableLM;
  else fail("{}: architecture \"{}\" is not supported (llama, phi2, stablelm)", what, arch);
  apply_family(c);
  auto get = [&](const std::string& key) -> const GgufValue& {
    auto* v = g.find(arch + "." + key);
    PMPD_CHECK(v, "{}: metadata key {}.{} missing", what, arch, key);
    return *v;
  };
  auto get_or = [&](const std::string& key, double fallback) {
    auto* v = g.find(arch + "." + key);
    return v ? v->as_float() : fallback;
  };
  auto int_of = [&](const std::string& key) {
    int64_t v = get(key).as_int();
    PMPD_CHECK(v >= 0 && v < (int64_t(1) << 31), "{}: {}.{} = {} out of range", what, arch, key, v);
    return int(v);
  };
  c.dim = int_of("embedding_length");
  c.hidden_dim = int_of("feed_forward_length");
  c.n_layers = int_of("block_count");
  c.n_heads = int_of("attention.head_count");
  c.n_kv_heads = g.find(arch + ".attention.head_count_kv") ? int_of("attention.head_count_kv") : c.n_heads;
  c.max_seq_len = int_of("context_length");
  PMPD_CHECK(c.n_heads > 0 && c.dim % c.n_heads == 0, "{}: embedding_length {} not divisible by {} heads", what, c.dim, c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  c.rotary_dim = g.find(arch + ".rope.dimension_count") ? int_of("rope.dimension_count") : c.head_dim;
  c.rope_theta = float(get_or("rope.freq_base", 10000.0));
  c.norm_eps = float(c.norm == NormKind::RMSNorm ? get_or("attention.layer_norm_rms_epsilon", 1e-5)
                                                  : get_or("attention.layer_norm_epsilon", 1e-5));
  c.rope_interleaved = c.arch == Arch::Llama;  // llama.cpp stores llama Q/K permuted for interleaved rope
  if (auto* v = g.find(arch + ".vocab_size")) c.vocab_size = int(v->as_int());
  else if (auto* t = g.find("tokenizer.ggml.tokens")) c.vocab_size = int(t->as_array().size());
  else if (auto* e = g.tensors.find("token_embd.weight")) c.vocab_size = int(e->rows());
  c.tied_embeddings = !g.tensors.find("output.weight");
  validate_config(c, what);
  return c;
}

ModelConfig config_from_llama2c(const Llama2cHeader& h) {
  ModelConfig c;
  c.arch = Arch::Llama;
  c.arch_name = "llama2.c";
  apply_family(c);
  c.dim = h.dim, c.hidden_dim = h.hidden_dim, c.n_layers = h.n_layers, c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads, c.vocab_size = h.vocab_size, c.max_seq_len = h.seq_len;
  c.head_dim = h.dim / h.n_heads;
  c.rotary_dim = c.head_dim;
  c.rope_interleaved = true;
  c.rope_theta = 10000.f;
  c.norm_eps = 1e-5f;
  c.tied_embeddings = h.shared_classifier;
  return c;
}

void validate_config(const ModelConfig& c, const std::string& what) {
  auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  PMPD_CHECK(in(c.dim, 1, 1 << 16) && in(c.hidden_dim, 1, 1 << 18) && in(c.n_layers, 1, 1024) &&
                 in(c.n_heads, 1, 1024) && in(c.n_kv_heads, 1, 1024) && in(c.vocab_size, 1, 1 << 22) &&
                 in(c.max_seq_len, 1, 1 << 22) && in(c.head_dim, 1, 4096),
             "{}: implausible model dimensions", what);
  PMPD_CHECK(c.n_heads % c.n_kv_heads == 0, "{}: {} heads not a multiple of {} kv heads", what, c.n_heads, c.n_kv_heads);
  PMPD_CHECK(c.rotary_dim >= 0 && c.rotary_dim <= c.head_dim && c.rotary_dim % 2 == 0,
             "{}: rotary dimension {} invalid for head_dim {}", what, c.rotary_dim, c.head_dim);
  PMPD_CHECK(std::isfinite(c.norm_eps) && c.norm_eps > 0 && std::isfinite(c.rope_theta) && c.rope_theta > 0,
             "{}: bad norm epsilon or rope theta", what);
}

}  // namespace pmpd
