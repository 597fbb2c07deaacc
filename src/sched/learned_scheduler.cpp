#include "sched/learned_scheduler.h"

#include <fmt/format.h>

#include "core/error.h"
#include "io/gguf.h"

namespace pmpd {

KvFeatures kv_features(const KVCache& cache, int layer) {
  cache.sync_host();  // a GPU backend keeps the cache on the device
  if (layer < 0) layer += cache.n_layers();
  PMPD_CHECK(layer >= 0 && layer < cache.n_layers(), "layer {} outside the model's {}", layer, cache.n_layers());
  KvFeatures f;
  f.tokens = cache.length(), f.heads = cache.kv_heads(), f.head_dim = cache.head_dim();
  const size_t per = size_t(f.heads) * f.head_dim;
  f.k.resize(per * size_t(f.tokens));
  f.v.resize(per * size_t(f.tokens));
  for (int t = 0; t < f.tokens; ++t)
    for (int h = 0; h < f.heads; ++h) {
      cache.load_k(layer, t, h, &f.k[size_t(t) * per + size_t(h) * f.head_dim]);
      cache.load_v(layer, t, h, &f.v[size_t(t) * per + size_t(h) * f.head_dim]);
    }
  return f;
}

void SwitchModel::save(const std::string& path) const {
  const SwitchNetShape& s = net.shape();
  const SwitchNet::Tensors t = net.tensors();
  // Stored as f32 (the network trains in double; f32 keeps predictions identical in practice
  // and the load path converts back).
  std::vector<std::vector<float>> bufs;
  GgufWriter w;
  w.set_string("general.architecture", "pmpd-switch");
  w.set_u32("pmpd.switch.layer", uint32_t(layer));
  w.set_u32("pmpd.switch.prefill_bits", uint32_t(prefill_bits));
  w.set_u32("pmpd.switch.high_bits", uint32_t(high_bits));
  w.set_u32("pmpd.switch.low_bits", uint32_t(low_bits));
  w.set_u32("pmpd.switch.max_new_tokens", uint32_t(max_new_tokens));
  w.set_array_i32("pmpd.switch.steps", std::vector<int32_t>(steps.begin(), steps.end()));
  w.set_u32("pmpd.switch.heads", uint32_t(s.heads));
  w.set_u32("pmpd.switch.head_dim", uint32_t(s.head_dim));
  w.set_u32("pmpd.switch.hidden", uint32_t(s.hidden));
  auto add = [&](const char* name, const double* p, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    bufs.emplace_back(p, p + n);
    w.add_tensor(name, DType::F32, shape, bufs.back().data());
  };
  bufs.reserve(7);
  add("switch.query", t.query, {s.heads, s.head_dim});
  add("switch.ln.weight", t.ln_g, {s.head_dim});
  add("switch.ln.bias", t.ln_b, {s.head_dim});
  add("switch.fc1.weight", t.w1, {s.hidden, s.head_dim});
  add("switch.fc1.bias", t.b1, {s.hidden});
  add("switch.fc2.weight", t.w2, {s.classes, s.hidden});
  add("switch.fc2.bias", t.b2, {s.classes});
  w.write(path);
}

SwitchModel SwitchModel::load(const std::string& path) {
  GgufFile g = read_gguf(path);
  auto num = [&](const char* key) {
    const GgufValue* v = g.find(key);
    PMPD_CHECK(v && v->is_int(), "{}: not a learned scheduler file (missing {})", path, key);
    const int64_t x = v->as_int();
    PMPD_CHECK(x >= 0 && x < (1 << 20), "{}: {} = {} is out of range", path, key, x);
    return int(x);
  };
  const GgufValue* arch = g.find("general.architecture");
  PMPD_CHECK(arch && arch->v.index() == 4 && arch->as_string() == "pmpd-switch",
             "{}: not a learned scheduler file (general.architecture is not pmpd-switch)", path);
  SwitchModel m;
  m.layer = num("pmpd.switch.layer");
  m.prefill_bits = num("pmpd.switch.prefill_bits");
  m.high_bits = num("pmpd.switch.high_bits");
  m.low_bits = num("pmpd.switch.low_bits");
  m.max_new_tokens = num("pmpd.switch.max_new_tokens");
  PMPD_CHECK(m.low_bits >= 1 && m.low_bits <= m.high_bits && m.high_bits <= 16 && m.prefill_bits <= 16,
             "{}: inconsistent widths (prefill {}, high {}, low {})", path, m.prefill_bits, m.high_bits, m.low_bits);
  const GgufValue* st = g.find("pmpd.switch.steps");
  PMPD_CHECK(st && st->v.index() == 5, "{}: missing pmpd.switch.steps", path);
  for (auto& v : st->as_array()) m.steps.push_back(int(v.as_int()));
  SwitchNetShape s{num("pmpd.switch.heads"), num("pmpd.switch.head_dim"), num("pmpd.switch.hidden"), int(m.steps.size())};
  PMPD_CHECK(s.heads > 0 && s.head_dim > 0 && s.hidden > 0 && s.classes >= 2, "{}: bad network shape", path);
  m.net = SwitchNet(s, 0);
  std::vector<double>& p = m.net.params();
  size_t off = 0;
  for (auto [name, n] : std::initializer_list<std::pair<const char*, int64_t>>{
           {"switch.query", int64_t(s.heads) * s.head_dim}, {"switch.ln.weight", s.head_dim}, {"switch.ln.bias", s.head_dim},
           {"switch.fc1.weight", int64_t(s.hidden) * s.head_dim}, {"switch.fc1.bias", s.hidden},
           {"switch.fc2.weight", int64_t(s.classes) * s.hidden}, {"switch.fc2.bias", s.classes}}) {
    const TensorView* t = g.tensors.find(name);
    PMPD_CHECK(t && t->dtype == DType::F32 && t->numel() == n, "{}: tensor {} missing or of the wrong shape", path, name);
    const float* d = static_cast<const float*>(t->data);
    for (int64_t i = 0; i < n; ++i) p[off + size_t(i)] = d[i];
    off += size_t(n);
  }
  return m;
}

LearnedScheduler::LearnedScheduler(SwitchModel m, int prefill_override)
    : m_(std::move(m)), prefill_(prefill_override ? prefill_override : m_.prefill_bits) {}

void LearnedScheduler::on_prefill(const KVCache& cache, const float*, int) {
  KvFeatures f = kv_features(cache, m_.layer);
  PMPD_CHECK(f.heads == m_.net.shape().heads && f.head_dim == m_.net.shape().head_dim,
             "the learned scheduler was trained for {} KV heads of {}; this model has {} of {}", m_.net.shape().heads,
             m_.net.shape().head_dim, f.heads, f.head_dim);
  class_ = m_.net.predict(f);
  switch_step_ = m_.steps[size_t(class_)];
}

std::string LearnedScheduler::describe() const {
  std::string s = fmt::format("learned {} -> {} bits (prefill {})", m_.high_bits, m_.low_bits, prefill_);
  if (class_ >= 0) s += fmt::format(", switch after {} decode steps", switch_step_);
  return s;
}

}  // namespace pmpd
