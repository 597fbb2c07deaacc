#include "model/gguf_export.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"

namespace pmpd {

namespace {

// Reorders a head-major matrix's rows from rotate_half order (i, i + hd/2) to
// interleaved pairs (2i, 2i+1); rows are `row_bytes` wide.
std::vector<uint8_t> permute_rows(const uint8_t* src, int n_heads, int head_dim, size_t row_bytes) {
  std::vector<uint8_t> out(size_t(n_heads) * head_dim * row_bytes);
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < half; ++j)
      for (int s = 0; s < 2; ++s) {
        size_t from = size_t(h) * head_dim + size_t(s) * half + j, to = size_t(h) * head_dim + 2 * j + s;
        std::memcpy(&out[to * row_bytes], src + from * row_bytes, row_bytes);
      }
  return out;
}

class Exporter {
 public:
  Exporter(const Model& m, std::optional<DType> dtype, const ExportHooks* hooks) : m_(m), dtype_(dtype), hooks_(hooks) {}

  void matrix(const std::string& name, const TensorView& t, int permute_heads = 0) {
    DType out_t = dtype_.value_or(t.dtype);
    const uint8_t* data = static_cast<const uint8_t*>(t.data);
    if (out_t != t.dtype) {
      auto buf = keep(size_t(t.numel()) * dtype_size(out_t));
      std::vector<float> row(size_t(t.cols()));
      for (int64_t r = 0; r < t.rows(); ++r) {
        to_f32(t.dtype, t.row_ptr(r), row.data(), row.size());
        uint8_t* dst = buf->data() + size_t(r) * row.size() * dtype_size(out_t);
        for (size_t i = 0; i < row.size(); ++i) {
          if (out_t == DType::F32) std::memcpy(dst + 4 * i, &row[i], 4);
          else {
            uint16_t v = out_t == DType::F16 ? f32_to_f16(row[i]) : f32_to_bf16(row[i]);
            std::memcpy(dst + 2 * i, &v, 2);
          }
        }
      }
      data = buf->data();
    }
    if (permute_heads) {
      auto p = std::make_shared<std::vector<uint8_t>>(
          permute_rows(data, permute_heads, m_.config.head_dim, size_t(t.cols()) * dtype_size(out_t)));
      owned_.push_back(p);
      data = p->data();
    }
    w_.add_tensor(name, out_t, t.shape, data);
  }

  void vec(const std::string& name, const std::vector<float>& v, int permute_heads = 0) {
    if (v.empty()) return;
    const uint8_t* data = reinterpret_cast<const uint8_t*>(v.data());
    if (permute_heads) {
      auto p = std::make_shared<std::vector<uint8_t>>(permute_rows(data, permute_heads, m_.config.head_dim, 4));
      owned_.push_back(p);
      data = p->data();
    }
    w_.add_tensor(name, DType::F32, {int64_t(v.size())}, data);
  }

  void linear(const std::string& base, const Linear& l, int permute_heads = 0, bool hookable = true) {
    bool written = false;
    if (hooks_ && hooks_->linear && hookable) {
      std::vector<int> order(size_t(l.out()));
      for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
      if (permute_heads) {
        const int hd = m_.config.head_dim, half = hd / 2;
        for (int h = 0; h < permute_heads; ++h)
          for (int j = 0; j < half; ++j)
            for (int s = 0; s < 2; ++s) order[size_t(h * hd + 2 * j + s)] = h * hd + s * half + j;
      }
      written = hooks_->linear(base + ".weight", l, order, w_, [this](size_t n) { return keep(n)->data(); });
    }
    if (!written) matrix(base + ".weight", l.w, permute_heads);
    vec(base + ".bias", l.bias, permute_heads);
  }
  void norm(const std::string& base, const Norm& n) {
    vec(base + ".weight", n.weight);
    vec(base + ".bias", n.bias);
  }

  GgufWriter& writer() { return w_; }

 private:
  std::shared_ptr<std::vector<uint8_t>> keep(size_t n) {
    owned_.push_back(std::make_shared<std::vector<uint8_t>>(n));
    return owned_.back();
  }
  const Model& m_;
  std::optional<DType> dtype_;
  const ExportHooks* hooks_;
  GgufWriter w_;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> owned_;
};

}  // namespace

void export_gguf(const Model& m, const std::string& path, std::optional<DType> dtype, const ExportHooks* hooks) {
  const ModelConfig& c = m.config;
  PMPD_CHECK(!m.quantized(), "{}: the model is already quantized ({}); convert the 16-bit original instead", m.path,
             m.quant.method);
  PMPD_CHECK(!dtype || *dtype == DType::F32 || *dtype == DType::F16 || *dtype == DType::BF16,
             "export: dtype must be F32, F16 or BF16");
  const char* arch = c.arch == Arch::Llama ? "llama" : c.arch == Arch::Phi ? "phi2" : "stablelm";
  if (c.arch == Arch::Llama)
    PMPD_CHECK(c.rotary_dim == c.head_dim, "{}: llama GGUF needs full rotary dimensions", m.path);
  PMPD_CHECK(c.arch == Arch::Llama || !c.rope_interleaved, "{}: {} GGUF expects rotate_half rotary", m.path, arch);
  // llama GGUF expects interleaved rotary; a model that rotates halves gets Q/K permuted.
  const bool permute = c.arch == Arch::Llama && !c.rope_interleaved;
  Exporter e(m, dtype, hooks);
  GgufWriter& w = e.writer();
  std::string a = arch;
  w.set_string("general.architecture", a);
  w.set_string("general.name", std::filesystem::path(m.path).filename().string());
  w.set_u32(a + ".context_length", uint32_t(c.max_seq_len));
  w.set_u32(a + ".embedding_length", uint32_t(c.dim));
  w.set_u32(a + ".block_count", uint32_t(c.n_layers));
  w.set_u32(a + ".feed_forward_length", uint32_t(c.hidden_dim));
  w.set_u32(a + ".attention.head_count", uint32_t(c.n_heads));
  w.set_u32(a + ".attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.set_u32(a + ".rope.dimension_count", uint32_t(c.rotary_dim));
  w.set_f32(a + ".rope.freq_base", c.rope_theta);
  w.set_u32(a + ".vocab_size", uint32_t(c.vocab_size));
  if (c.norm == NormKind::RMSNorm) w.set_f32(a + ".attention.layer_norm_rms_epsilon", c.norm_eps);
  else w.set_f32(a + ".attention.layer_norm_epsilon", c.norm_eps);
  if (m.tokenizer) tokenizer_to_gguf(*m.tokenizer, w);
  if (hooks && hooks->metadata) hooks->metadata(w);

  e.matrix("token_embd.weight", m.token_embd);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = m.layers[size_t(l)];
    std::string p = "blk." + std::to_string(l) + ".";
    e.norm(p + "attn_norm", lw.attn_norm);
    if (!c.parallel_residual) e.norm(p + "ffn_norm", lw.ffn_norm);
    e.linear(p + "attn_q", lw.q, permute ? c.n_heads : 0);
    e.linear(p + "attn_k", lw.k, permute ? c.n_kv_heads : 0);
    e.linear(p + "attn_v", lw.v);
    e.linear(p + "attn_output", lw.o);
    if (c.gated_mlp) e.linear(p + "ffn_gate", lw.gate);
    e.linear(p + "ffn_up", lw.up);
    e.linear(p + "ffn_down", lw.down);
  }
  e.norm("output_norm", m.output_norm);
  // The head stays 16-bit unless the hooks ask for it (pmpd quantize --quantize-head).
  const bool head_hooked = hooks && hooks->head;
  if (!c.tied_embeddings || head_hooked) e.linear("output", m.output, 0, head_hooked);
  w.write(path);
}

}  // namespace pmpd
