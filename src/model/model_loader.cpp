#include "model/model_loader.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "tokenizer/gguf_tokenizer.h"

namespace pmpd {

namespace fs = std::filesystem;

namespace {

// Hugging Face tensor names -> the GGUF names the model binds to.
std::string hf_to_gguf_name(const std::string& n) {
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
      {"model.norm.bias", "output_norm.bias"},            {"model.final_layernorm.weight", "output_norm.weight"},
      {"model.final_layernorm.bias", "output_norm.bias"}, {"lm_head.weight", "output.weight"},
      {"lm_head.bias", "output.bias"}};
  for (auto& [from, to] : kGlobal)
    if (n == from) return to;
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm", "attn_norm"},        {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},          {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},          {"self_attn.o_proj", "attn_output"},
      {"self_attn.dense", "attn_output"},      {"mlp.gate_proj", "ffn_gate"},
      {"mlp.up_proj", "ffn_up"},               {"mlp.down_proj", "ffn_down"},
      {"mlp.fc1", "ffn_up"},                   {"mlp.fc2", "ffn_down"}};
  const std::string prefix = "model.layers.";
  if (n.rfind(prefix, 0) != 0) return {};
  size_t dot = n.find('.', prefix.size());
  if (dot == std::string::npos) return {};
  std::string layer = n.substr(prefix.size(), dot - prefix.size());
  std::string rest = n.substr(dot + 1);
  for (auto& [from, to] : kLayer) {
    std::string f = from;
    if (rest.rfind(f + ".", 0) == 0) return "blk." + layer + "." + to + rest.substr(f.size());
  }
  return {};
}

void rename_hf(TensorSet& ts) {
  std::map<std::string, TensorView> out;
  for (auto& [name, t] : ts.tensors) {
    std::string g = hf_to_gguf_name(name);
    if (g.empty()) continue;  // buffers such as rotary_emb.inv_freq
    t.name = g;
    out.emplace(g, t);
  }
  ts.tensors = std::move(out);
}

bool is_gguf(const std::string& path) {
  auto f = MappedFile::open(path);
  return f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0;
}

class Binder {
 public:
  Binder(Model& m) : m_(m), what_(m.path) {}

  const TensorView* find(const std::string& name) { return m_.tensors.find(name); }

  TensorView matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorView* t = find(name);
    PMPD_CHECK(t, "{}: tensor {} missing", what_, name);
    check_float(*t);
    PMPD_CHECK(t->shape.size() == 2 && t->shape[0] == rows && t->shape[1] == cols,
               "{}: tensor {} has shape {}, expected [{}, {}]", what_, name, shape_str(t->shape), rows, cols);
    return is_block_type(t->dtype) ? widened(*t) : *t;
  }

  // A llama.cpp block-quantized matrix as F16 rows the kernels read (F32 where a value
  // would overflow F16), made once per tensor: phi2's fused q|k|v is bound three times.
  TensorView widened(const TensorView& t) {
    if (auto it = widened_.find(t.name); it != widened_.end()) return it->second;
    const int64_t rows = t.rows(), cols = t.cols();
    TensorView v = t;
    auto buf = std::make_shared<std::vector<uint8_t>>();
    // Row by row into F16 (no f32 copy of the whole matrix: a 128K-token embedding would be
    // 2 GB); a value past F16's range makes the whole matrix F32 instead.
    for (DType d : {DType::F16, DType::F32}) {
      v.dtype = d;
      buf->resize(v.nbytes());
      bool fits = true;
#pragma omp parallel for reduction(&& : fits) schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        if (d == DType::F32) {
          to_f32(t.dtype, t.row_ptr(r), reinterpret_cast<float*>(buf->data()) + r * cols, size_t(cols));
          continue;
        }
        thread_local std::vector<float> row;
        row.resize(size_t(cols));
        to_f32(t.dtype, t.row_ptr(r), row.data(), row.size());
        for (float x : row) fits = fits && std::fabs(x) <= 65504.0f;
        f32_to_f16_row(row.data(), reinterpret_cast<uint16_t*>(buf->data()) + r * cols, row.size());
      }
      if (fits) break;
    }
    v.data = buf->data();
    m_.tensors.owned.push_back(std::move(buf));
    ++m_.widened_from[std::string(dtype_name(t.dtype))];
    return widened_[t.name] = v;
  }

  std::vector<float> vec(const std::string& name, int64_t n, bool required) {
    const TensorView* t = find(name);
    if (!t) {
      PMPD_CHECK(!required, "{}: tensor {} missing", what_, name);
      return {};
    }
    check_float(*t);
    PMPD_CHECK(t->numel() == n && t->shape.size() == 1, "{}: tensor {} has shape {}, expected [{}]", what_, name,
               shape_str(t->shape), n);
    std::vector<float> v(static_cast<size_t>(n));
    to_f32(t->dtype, t->data, v.data(), size_t(n));
    return v;
  }

  Linear linear(const std::string& base, int64_t out, int64_t in) {
    Linear l;
    if (!find(base + ".weight") && find(base + ".weight.planes")) {
      l.q = bitplanes(base + ".weight", out, in);
      l.w = TensorView{base + ".weight", DType::Unknown, {out, in}, nullptr};
    } else {
      l.w = matrix(base + ".weight", out, in);
    }
    l.bias = vec(base + ".bias", out, false);
    return l;
  }

  // Nested bit planes written by `pmpd quantize` (docs/format.md): planes
  // {bits_max, out, stride} as I8 and one F16 table {out, 2^b} per width.
  std::shared_ptr<kernels::BitPlaneMatrix> bitplanes(const std::string& name, int64_t out, int64_t in) {
    const QuantInfo& qi = m_.quant;
    PMPD_CHECK(!qi.method.empty(), "{}: tensor {}.planes found but the file has no pmpd.quant metadata", what_, name);
    auto q = std::make_shared<kernels::BitPlaneMatrix>();
    q->rows = out, q->cols = in, q->bits_min = qi.bits_min, q->bits_max = qi.bits_max;
    q->plane_stride = kernels::BitPlaneMatrix::stride_for(in);
    q->group_size = qi.group_size > 0 && qi.group_size < in ? qi.group_size : 0;
    const int64_t groups = q->groups();
    const TensorView* p = find(name + ".planes");
    PMPD_CHECK(p->dtype == DType::I8 && p->shape == std::vector<int64_t>({qi.bits_max, out, q->plane_stride}),
               "{}: tensor {}.planes has {} {}, expected I8 [{}, {}, {}] (a missing or extra plane?)", what_, name,
               dtype_name(p->dtype), shape_str(p->shape), qi.bits_max, out, q->plane_stride);
    q->planes = static_cast<const uint8_t*>(p->data);
    for (int b = qi.bits_min; b <= qi.bits_max; ++b) {
      std::string tn = name + ".lut" + std::to_string(b);
      const TensorView* t = find(tn);
      PMPD_CHECK(t, "{}: tensor {} missing (the file claims bits {} to {})", what_, tn, qi.bits_min, qi.bits_max);
      std::vector<int64_t> want = groups > 1 ? std::vector<int64_t>{out, groups, int64_t(1) << b}
                                             : std::vector<int64_t>{out, int64_t(1) << b};
      PMPD_CHECK(t->dtype == DType::F16 && t->shape == want, "{}: tensor {} has {} {}, expected F16 {}", what_, tn,
                 dtype_name(t->dtype), shape_str(t->shape), shape_str(want));
      q->tables.push_back(static_cast<const uint16_t*>(t->data));
    }
    if (const TensorView* rp = find(name + ".sp_rowptr")) {  // dense-and-sparse outliers
      const TensorView* col = find(name + ".sp_col");
      const TensorView* val = find(name + ".sp_val");
      PMPD_CHECK(col && val, "{}: {} has sp_rowptr but lacks sp_col or sp_val", what_, name);
      PMPD_CHECK(rp->dtype == DType::I32 && rp->numel() == out + 1 && col->dtype == DType::I32 &&
                     val->dtype == DType::F16 && col->numel() == val->numel(),
                 "{}: sparse tensors of {} have inconsistent types or sizes", what_, name);
      auto* ptr = static_cast<const int32_t*>(rp->data);
      auto* cols = static_cast<const int32_t*>(col->data);
      PMPD_CHECK(ptr[0] == 0 && ptr[out] == col->numel(), "{}: {}.sp_rowptr does not span its {} entries", what_, name,
                 col->numel());
      for (int64_t r = 0; r < out; ++r)
        PMPD_CHECK(ptr[r] <= ptr[r + 1], "{}: {}.sp_rowptr decreases at row {}", what_, name, r);
      for (int64_t i = 0; i < col->numel(); ++i)
        PMPD_CHECK(cols[i] >= 0 && cols[i] < in, "{}: {}.sp_col[{}] = {} outside [0, {})", what_, name, i, cols[i], in);
      q->sp_rowptr = ptr, q->sp_col = cols, q->sp_val = static_cast<const uint16_t*>(val->data), q->nnz = col->numel();
    }
    kernels::prepare_int8(*q);
    ++m_.quant.quantized_tensors;
    return q;
  }

  Norm norm(const std::string& base, int64_t n, bool with_bias_allowed) {
    Norm nm;
    nm.weight = vec(base + ".weight", n, true);
    nm.bias = vec(base + ".bias", n, false);
    return nm;
  }

  // Row slice [r0, r0+rows) of a fused matrix: zero-copy because rows are contiguous.
  Linear slice(const std::string& base, int64_t r0, int64_t rows, int64_t total, int64_t in) {
    Linear fused = linear(base, total, in);
    Linear l;
    l.w = fused.w;
    l.w.shape = {rows, in};
    l.w.data = fused.w.row_ptr(r0);
    if (!fused.bias.empty()) l.bias.assign(fused.bias.begin() + r0, fused.bias.begin() + r0 + rows);
    return l;
  }

  void check_float(const TensorView& t) {
    PMPD_CHECK(t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 || is_block_type(t.dtype),
               "{}: tensor {} has dtype {} (F32, F16, BF16 or a llama.cpp block type expected)", what_, t.name,
               dtype_name(t.dtype));
  }

 private:
  Model& m_;
  const std::string& what_;
  std::map<std::string, TensorView> widened_;
};

void bind(Model& m) {
  const ModelConfig& c = m.config;
  Binder b(m);
  const int64_t D = c.dim, F = c.hidden_dim, V = c.vocab_size, Q = int64_t(c.n_heads) * c.head_dim, KV = c.kv_dim();
  m.token_embd = b.matrix("token_embd.weight", V, D);
  for (int l = 0; l < c.n_layers; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.attn_norm = b.norm(p + "attn_norm", D, true);
    if (!c.parallel_residual) lw.ffn_norm = b.norm(p + "ffn_norm", D, true);
    if (b.find(p + "attn_q.weight") || b.find(p + "attn_q.weight.planes")) {
      lw.q = b.linear(p + "attn_q", Q, D);
      lw.k = b.linear(p + "attn_k", KV, D);
      lw.v = b.linear(p + "attn_v", KV, D);
    } else {  // llama.cpp's fused QKV (phi2)
      lw.q = b.slice(p + "attn_qkv", 0, Q, Q + 2 * KV, D);
      lw.k = b.slice(p + "attn_qkv", Q, KV, Q + 2 * KV, D);
      lw.v = b.slice(p + "attn_qkv", Q + KV, KV, Q + 2 * KV, D);
    }
    lw.o = b.linear(p + "attn_output", D, Q);
    if (c.gated_mlp) lw.gate = b.linear(p + "ffn_gate", F, D);
    lw.up = b.linear(p + "ffn_up", F, D);
    lw.down = b.linear(p + "ffn_down", D, F);
    m.layers.push_back(std::move(lw));
  }
  m.output_norm = b.norm("output_norm", D, true);
  if (b.find("output.weight") || b.find("output.weight.planes")) {
    m.output = b.linear("output", V, D);
    m.config.tied_embeddings = false;
  } else {
    PMPD_CHECK(c.tied_embeddings || m.format != "safetensors",
               "{}: lm_head.weight missing and tie_word_embeddings is false", m.path);
    m.output.w = m.token_embd;
    m.config.tied_embeddings = true;
  }
}

}  // namespace

size_t Model::weight_bytes() const {
  size_t n = 0;
  for (auto& [name, t] : tensors.tensors) n += t.nbytes();
  return n;
}

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& opt) {
  auto m = std::make_unique<Model>();
  m->path = path;
  PMPD_CHECK(fs::exists(path), "{}: no such file or directory", path);
  if (fs::is_directory(path)) {
    fs::path dir(path);
    PMPD_CHECK(fs::exists(dir / "config.json"), "{}: not a Hugging Face model directory (no config.json)", path);
    m->format = "safetensors";
    m->config = config_from_hf(parse_json_file((dir / "config.json").string()), (dir / "config.json").string());
    if (fs::exists(dir / "model.safetensors.index.json"))
      read_safetensors_index((dir / "model.safetensors.index.json").string(), m->tensors);
    else if (fs::exists(dir / "model.safetensors"))
      read_safetensors((dir / "model.safetensors").string(), m->tensors);
    else
      fail("{}: no model.safetensors or model.safetensors.index.json (PyTorch .bin weights are not supported)", path);
    m->tensors.source = path;
    rename_hf(m->tensors);
    if (opt.tokenizer_path.empty() &&
        (fs::exists(dir / "tokenizer.json") || fs::exists(dir / "tokenizer.model")))
      m->tokenizer = load_hf_tokenizer(path);
  } else if (is_gguf(path)) {
    m->format = "gguf";
    GgufFile g = read_gguf(path);
    m->config = config_from_gguf(g);
    if (auto* method = g.find("pmpd.quant.method")) {
      m->quant.method = method->as_string();
      auto* lo = g.find("pmpd.quant.bits_min");
      auto* hi = g.find("pmpd.quant.bits_max");
      PMPD_CHECK(lo && hi && lo->is_int() && hi->is_int(), "{}: pmpd.quant.bits_min/bits_max missing", path);
      m->quant.bits_min = int(lo->as_int()), m->quant.bits_max = int(hi->as_int());
      if (auto* gs = g.find("pmpd.quant.group_size")) {
        PMPD_CHECK(gs->is_int() && gs->as_int() >= 0 && gs->as_int() % 64 == 0 && gs->as_int() < (1 << 24),
                   "{}: pmpd.quant.group_size must be 0 or a multiple of 64", path);
        m->quant.group_size = int(gs->as_int());
      }
      PMPD_CHECK(m->quant.bits_min >= 1 && m->quant.bits_min <= m->quant.bits_max && m->quant.bits_max <= 8,
                 "{}: pmpd.quant bit range {}:{} is invalid (1 <= min <= max <= 8)", path, m->quant.bits_min,
                 m->quant.bits_max);
    }
    if (opt.tokenizer_path.empty() && g.find("tokenizer.ggml.model")) m->tokenizer = tokenizer_from_gguf(g);
    m->tensors = std::move(g.tensors);
  } else {
    m->format = "llama2c";
    Llama2cHeader h = read_llama2c(path, m->tensors);
    m->config = config_from_llama2c(h);
    fs::path tok = fs::path(path).parent_path() / "tokenizer.bin";
    if (opt.tokenizer_path.empty() && fs::exists(tok))
      m->tokenizer = load_llama2c_tokenizer(tok.string(), h.vocab_size);
  }
  if (!opt.tokenizer_path.empty()) {
    const std::string& t = opt.tokenizer_path;
    if (fs::is_directory(t)) m->tokenizer = load_hf_tokenizer(t);
    else if (t.ends_with(".json")) m->tokenizer = load_tokenizer_json(t);
    else if (t.ends_with(".model")) m->tokenizer = load_sentencepiece_model(t);
    else m->tokenizer = load_llama2c_tokenizer(t, m->config.vocab_size);
  }
  if (m->tokenizer)
    PMPD_CHECK(int(m->tokenizer->pieces.size()) <= m->config.vocab_size,
               "{}: tokenizer {} has {} tokens but the model's vocabulary is {}", path, m->tokenizer->source,
               m->tokenizer->pieces.size(), m->config.vocab_size);
  bind(*m);
  if (m->quantized()) PMPD_CHECK(m->quant.quantized_tensors > 0, "{}: pmpd.quant metadata but no quantized tensors", path);
  return m;
}

std::string default_model_path() {
  if (const char* e = std::getenv("PMPD_MODEL")) return e;
  // The project's own model once trained; until then the shared llama2.c checkpoint.
  const std::string src = PMPD_SOURCE_DIR;
  for (const std::string& p : {src + "/models/pmpd-tiny", src + "/../shared/models/stories260K/stories260K.bin"})
    if (fs::exists(p)) return p;
  fail("no model given and no default model found (set --model or PMPD_MODEL)");
}

}  // namespace pmpd
