#include "io/llama2c.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "fmt/format.h"

namespace pmpd {

namespace {
constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42"
}

Llama2cHeader read_llama2c(const std::string& path, TensorSet& out) {
  auto file = MappedFile::open(path);
  PMPD_CHECK(file->size() >= 28, "{}: too small for a llama2.c checkpoint", path);
  Llama2cHeader h{};
  const uint8_t* p = file->data();
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  size_t header_bytes;
  int32_t cfg[7];
  if (magic == kMagicV1) {
    PMPD_CHECK(file->size() >= 256, "{}: truncated llama2.c v1 header", path);
    int32_t version;
    std::memcpy(&version, p + 4, 4);
    PMPD_CHECK(version == 1, "{}: llama2.c checkpoint version {} is not supported (0 and 1 are)",
               path, version);
    std::memcpy(cfg, p + 8, sizeof cfg);
    h.shared_classifier = p[36] != 0;
    h.version = 1;
    header_bytes = 256;
  } else {
    std::memcpy(cfg, p, sizeof cfg);
    h.shared_classifier = cfg[5] > 0;
    // A negative vocab size marks an unshared classifier; INT32_MIN has no positive twin
    // (found by fuzz_llama2c) and is left for the plausibility check to reject.
    cfg[5] = cfg[5] == INT32_MIN ? 0 : cfg[5] < 0 ? -cfg[5] : cfg[5];
    h.version = 0;
    header_bytes = 28;
  }
  h.dim = cfg[0], h.hidden_dim = cfg[1], h.n_layers = cfg[2], h.n_heads = cfg[3],
  h.n_kv_heads = cfg[4], h.vocab_size = cfg[5], h.seq_len = cfg[6];
  auto sane = [](int v, int hi) { return v > 0 && v <= hi; };
  PMPD_CHECK(sane(h.dim, 1 << 16) && sane(h.hidden_dim, 1 << 18) && sane(h.n_layers, 1024) &&
                 sane(h.n_heads, 1024) && sane(h.n_kv_heads, 1024) && sane(h.vocab_size, 1 << 22) &&
                 sane(h.seq_len, 1 << 22),
             "{}: not a llama2.c checkpoint (implausible header: dim {} hidden {} layers {} heads {} "
             "kv_heads {} vocab {} seq_len {})",
             path, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len);
  PMPD_CHECK(h.dim % h.n_heads == 0 && h.n_heads % h.n_kv_heads == 0,
             "{}: dim {} / heads {} / kv_heads {} do not divide", path, h.dim, h.n_heads, h.n_kv_heads);
  const int64_t D = h.dim, F = h.hidden_dim, L = h.n_layers, V = h.vocab_size;
  const int64_t hs = D / h.n_heads, kv = hs * h.n_kv_heads;

  // Lay out every tensor in file order and check the total size before touching data.
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    int layers;  // >0: stacked over layers, exposed per layer
  };
  std::vector<Entry> order;
  if (h.version == 0) {
    order = {{"token_embd.weight", {V, D}, 0}, {"attn_norm.weight", {D}, 1},
             {"attn_q.weight", {D, D}, 1},     {"attn_k.weight", {kv, D}, 1},
             {"attn_v.weight", {kv, D}, 1},    {"attn_output.weight", {D, D}, 1},
             {"ffn_norm.weight", {D}, 1},      {"ffn_gate.weight", {F, D}, 1},
             {"ffn_down.weight", {D, F}, 1},   {"ffn_up.weight", {F, D}, 1},
             {"output_norm.weight", {D}, 0},   {"freq_cis_real", {h.seq_len, hs / 2}, 0},
             {"freq_cis_imag", {h.seq_len, hs / 2}, 0}};
  } else {
    order = {{"attn_norm.weight", {D}, 1},      {"ffn_norm.weight", {D}, 1},
             {"output_norm.weight", {D}, 0},    {"token_embd.weight", {V, D}, 0},
             {"attn_q.weight", {D, D}, 1},      {"attn_k.weight", {kv, D}, 1},
             {"attn_v.weight", {kv, D}, 1},     {"attn_output.weight", {D, D}, 1},
             {"ffn_gate.weight", {F, D}, 1},    {"ffn_down.weight", {D, F}, 1},
             {"ffn_up.weight", {F, D}, 1}};
  }
  if (!h.shared_classifier) order.push_back({"output.weight", {V, D}, 0});

  uint64_t need = header_bytes;
  for (auto& e : order) {
    uint64_t n = 4;
    for (auto d : e.shape) n *= uint64_t(d);
    need += n * (e.layers ? uint64_t(L) : 1);
  }
  PMPD_CHECK(file->size() >= need, "{}: truncated llama2.c checkpoint: {} bytes, header implies {}",
             path, file->size(), need);
  PMPD_CHECK(file->size() == need, "{}: llama2.c checkpoint is {} bytes but its header implies {} "
             "(wrong format or corrupt file)", path, file->size(), need);

  const uint8_t* cur = p + header_bytes;
  for (auto& e : order) {
    TensorView t{e.name, DType::F32, e.shape, nullptr};
    size_t n = t.nbytes();
    if (e.layers) {
      for (int l = 0; l < L; ++l) {
        TensorView lt = t;
        lt.name = fmt::format("blk.{}.{}", l, e.name);
        lt.data = cur;
        cur += n;
        out.tensors.emplace(lt.name, std::move(lt));
      }
    } else {
      t.data = cur;
      cur += n;
      if (e.name.rfind("freq_cis", 0) != 0) out.tensors.emplace(e.name, std::move(t));
    }
  }
  out.source = path;
  out.files.push_back(std::move(file));
  return h;
}

Llama2cVocab read_llama2c_tokenizer(const std::string& path, int vocab_size) {
  auto file = MappedFile::open(path);
  const uint8_t* p = file->data();
  size_t pos = 0, size = file->size();
  auto take = [&](void* dst, size_t n, const char* what) {
    PMPD_CHECK(n <= size - pos, "{}: truncated llama2.c tokenizer while reading {}", path, what);
    std::memcpy(dst, p + pos, n);
    pos += n;
  };
  int32_t max_len;
  take(&max_len, 4, "max_token_length");
  PMPD_CHECK(max_len > 0 && max_len < (1 << 16), "{}: bad max_token_length {}", path, max_len);
  Llama2cVocab v;
  for (int i = 0; i < vocab_size; ++i) {
    float score;
    int32_t len;
    take(&score, 4, "score");
    take(&len, 4, "length");
    PMPD_CHECK(len >= 0 && len <= max_len, "{}: token {} has length {}", path, i, len);
    std::string s(size_t(len), '\0');
    take(s.data(), size_t(len), "token bytes");
    v.pieces.push_back(std::move(s));
    v.scores.push_back(score);
  }
  return v;
}

}  // namespace pmpd
