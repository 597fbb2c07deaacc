#include "model/synthetic.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pmpd {

namespace {

struct ShapeSpec {
  const char* name;
  Arch arch;
  int dim, hidden, layers, heads, kv_heads, head_dim, rotary_dim, vocab, ctx;
};

// From each model's config.json (Hugging Face): lmsys/vicuna-7b-v1.5,
// mtgoutput/MobileLLaMA-1.4B-Base, microsoft/phi-1_5, stabilityai/stablelm-zephyr-3b.
constexpr ShapeSpec kShapes[] = {
    {"vicuna-7b", Arch::Llama, 4096, 11008, 32, 32, 32, 128, 128, 32000, 4096},
    {"mobilellama-1.4b", Arch::Llama, 2048, 5632, 24, 16, 16, 128, 128, 32000, 2048},
    {"phi-1.5", Arch::Phi, 2048, 8192, 24, 32, 32, 64, 32, 51200, 2048},
    {"zephyr-3b", Arch::StableLM, 2560, 6912, 32, 32, 32, 80, 20, 50304, 4096},
    {"tiny", Arch::Llama, 256, 688, 2, 4, 2, 64, 64, 512, 512},
};

// splitmix64: fast, seedable, good enough for random weights.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) / float(1 << 24) * 2.f - 1.f; }  // [-1, 1)
};

std::shared_ptr<std::vector<uint8_t>> random_bytes(size_t n, uint64_t seed) {
  auto buf = std::make_shared<std::vector<uint8_t>>(n);
  const size_t words = n / 8;
  auto* w = reinterpret_cast<uint64_t*>(buf->data());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < int64_t(words); ++i) {
    Rng r{seed * 0x100000001b3ull + uint64_t(i)};
    w[i] = r.next();
  }
  Rng r{seed};
  for (size_t i = words * 8; i < n; ++i) (*buf)[i] = uint8_t(r.next());
  return buf;
}

std::shared_ptr<std::vector<uint8_t>> random_f16(size_t n, float scale, uint64_t seed) {
  auto buf = std::make_shared<std::vector<uint8_t>>(n * 2);
  auto* h = reinterpret_cast<uint16_t*>(buf->data());
  constexpr int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < int64_t((n + kChunk - 1) / kChunk); ++c) {
    Rng r{seed * 0x100000001b3ull + uint64_t(c)};
    for (size_t i = size_t(c) * kChunk; i < std::min(n, size_t(c + 1) * kChunk); ++i) h[i] = f32_to_f16(r.uniform() * scale);
  }
  return buf;
}

class Builder {
 public:
  Builder(Model& m, const SyntheticOptions& opt) : m_(m), opt_(opt), seed_(opt.seed) {}

  Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    Linear l;
    const float scale = 1.f / std::sqrt(float(in));
    if (opt_.quantized) {
      auto q = std::make_shared<kernels::BitPlaneMatrix>();
      q->rows = out, q->cols = in, q->bits_min = opt_.bits_min, q->bits_max = opt_.bits_max;
      q->plane_stride = kernels::BitPlaneMatrix::stride_for(in);
      auto planes = random_bytes(size_t(opt_.bits_max) * size_t(out) * size_t(q->plane_stride), ++seed_);
      // Padding columns past `in` carry code 0, as the packer writes them.
      if (in % 64)
        for (size_t pr = 0; pr < size_t(opt_.bits_max) * size_t(out); ++pr)
          for (int64_t j = in; j < q->plane_stride * 8; ++j) (*planes)[pr * size_t(q->plane_stride) + size_t(j >> 3)] &= uint8_t(~(1u << (j & 7)));
      q->planes = planes->data();
      m_.tensors.owned.push_back(planes);
      for (int b = opt_.bits_min; b <= opt_.bits_max; ++b) {
        const size_t entries = size_t(out) << b;
        auto t = std::make_shared<std::vector<uint8_t>>(entries * 2);
        auto* tv = reinterpret_cast<uint16_t*>(t->data());
        Rng r{++seed_};
        std::vector<float> row(size_t(1) << b);
        for (int64_t i = 0; i < out; ++i) {
          for (float& v : row) v = r.uniform() * scale;
          std::sort(row.begin(), row.end());  // centroids ascend, as the quantizer writes them
          for (size_t k = 0; k < row.size(); ++k) tv[(size_t(i) << b) + k] = f32_to_f16(row[k]);
        }
        q->tables.push_back(tv);
        m_.tensors.owned.push_back(t);
      }
      kernels::prepare_int8(*q);
      l.q = q;
      l.w = TensorView{name, DType::Unknown, {out, in}, nullptr};
    } else {
      auto w = random_f16(size_t(out) * size_t(in), scale, ++seed_);
      l.w = TensorView{name, DType::F16, {out, in}, w->data()};
      m_.tensors.owned.push_back(w);
    }
    if (bias) {
      Rng r{++seed_};
      l.bias.resize(size_t(out));
      for (float& v : l.bias) v = r.uniform() * 0.01f;
    }
    return l;
  }

  // Weights around 1, some above, as trained checkpoints have them (the shipped stories260K's
  // reach 1.13): the CUDA backend folds RMSNorms with weights above 1 through a power-of-two
  // gain, which all-ones weights would never exercise. Their own stream of seeds, so that the
  // matrices keep theirs.
  Norm norm(int dim, bool layer_norm) {
    Norm n;
    Rng r{0x6e6f726dull + uint64_t(++norms_)};
    n.weight.resize(size_t(dim));
    for (float& v : n.weight) v = 1.f + 0.5f * r.uniform();
    if (layer_norm) n.bias.assign(size_t(dim), 0.f);
    return n;
  }

 private:
  Model& m_;
  const SyntheticOptions& opt_;
  uint64_t seed_;
  int norms_ = 0;
};

}  // namespace

std::vector<std::string> synthetic_shape_names() {
  std::vector<std::string> names;
  for (const auto& s : kShapes) names.push_back(s.name);
  return names;
}

ModelConfig synthetic_config(const std::string& name) {
  for (const auto& s : kShapes) {
    if (name != s.name) continue;
    ModelConfig c;
    c.arch = s.arch;
    c.arch_name = s.arch == Arch::Llama ? "llama" : s.arch == Arch::Phi ? "phi" : "stablelm";
    c.dim = s.dim, c.hidden_dim = s.hidden, c.n_layers = s.layers, c.n_heads = s.heads, c.n_kv_heads = s.kv_heads;
    c.head_dim = s.head_dim, c.rotary_dim = s.rotary_dim, c.vocab_size = s.vocab, c.max_seq_len = s.ctx;
    if (s.arch == Arch::Phi) {
      c.norm = NormKind::LayerNorm, c.act = Activation::GeluTanh, c.gated_mlp = false, c.parallel_residual = true;
    } else if (s.arch == Arch::StableLM) {
      c.norm = NormKind::LayerNorm;
    }
    return c;
  }
  std::string known;
  for (const auto& s : kShapes) known += std::string(known.empty() ? "" : ", ") + s.name;
  fail("unknown model shape \"{}\" (known: {})", name, known);
}

std::unique_ptr<Model> make_synthetic_model(const ModelConfig& c, const SyntheticOptions& opt) {
  PMPD_CHECK(!opt.quantized || (opt.bits_min >= 1 && opt.bits_min <= opt.bits_max && opt.bits_max <= 8),
             "synthetic model: widths {}..{} outside 1..8", opt.bits_min, opt.bits_max);
  auto m = std::make_unique<Model>();
  m->path = "synthetic";
  m->format = "synthetic";
  m->config = c;
  Builder b(*m, opt);
  const bool ln = c.norm == NormKind::LayerNorm, bias = c.arch == Arch::Phi;
  const int64_t D = c.dim, F = c.hidden_dim, Q = int64_t(c.n_heads) * c.head_dim, KV = c.kv_dim();
  auto embd = random_f16(size_t(c.vocab_size) * size_t(D), 1.f, opt.seed * 7 + 3);
  m->token_embd = TensorView{"token_embd.weight", DType::F16, {c.vocab_size, D}, embd->data()};
  m->tensors.owned.push_back(embd);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    w.attn_norm = b.norm(c.dim, ln);
    if (!c.parallel_residual) w.ffn_norm = b.norm(c.dim, ln);
    const std::string p = "blk." + std::to_string(l) + ".";
    w.q = b.linear(p + "attn_q.weight", Q, D, bias);
    w.k = b.linear(p + "attn_k.weight", KV, D, bias);
    w.v = b.linear(p + "attn_v.weight", KV, D, bias);
    w.o = b.linear(p + "attn_output.weight", D, Q, bias);
    if (c.gated_mlp) w.gate = b.linear(p + "ffn_gate.weight", F, D, bias);
    w.up = b.linear(p + "ffn_up.weight", F, D, bias);
    w.down = b.linear(p + "ffn_down.weight", D, F, bias);
    m->layers.push_back(std::move(w));
  }
  m->output_norm = b.norm(c.dim, ln);
  if (opt.quantized && opt.quantize_head) {  // as `pmpd quantize --quantize-head` writes it
    m->output = b.linear("output.weight", c.vocab_size, D, bias);
    if (bias) std::fill(m->output.bias.begin(), m->output.bias.end(), 0.f);
  } else {  // the LM head stays 16-bit, as pmpd quantize leaves it by default
    auto head = random_f16(size_t(c.vocab_size) * size_t(D), 1.f / std::sqrt(float(D)), opt.seed * 7 + 5);
    m->output.w = TensorView{"output.weight", DType::F16, {c.vocab_size, D}, head->data()};
    m->tensors.owned.push_back(head);
    if (bias) m->output.bias.assign(size_t(c.vocab_size), 0.f);
  }
  if (opt.quantized) {
    m->quant.method = "anyprec";
    m->quant.bits_min = opt.bits_min, m->quant.bits_max = opt.bits_max;
    m->quant.quantized_tensors = c.n_layers * (c.gated_mlp ? 7 : 6) + (opt.quantize_head ? 1 : 0);
  }
  return m;
}

}  // namespace pmpd
