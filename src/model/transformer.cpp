#include "model/transformer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include <omp.h>

#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/dot.h"
#include "model/cuda_model.h"

namespace pmpd {

KVCache::KVCache(const ModelConfig& c, int max_seq, bool f16)
    : n_layers_(c.n_layers), max_seq_(max_seq), kv_dim_(c.kv_dim()), head_dim_(c.head_dim), f16_(f16) {
  size_t n = size_t(n_layers_) * max_seq_ * kv_dim_;
  if (f16_) k16_.assign(n, 0), v16_.assign(n, 0);
  else k32_.assign(n, 0.f), v32_.assign(n, 0.f);
}

KVCache::KVCache(const KVCache& o)
    : n_layers_(o.n_layers_), max_seq_(o.max_seq_), kv_dim_(o.kv_dim_), head_dim_(o.head_dim_), f16_(o.f16_),
      length_(o.length_), k16_(o.k16_), v16_(o.v16_), k32_(o.k32_), v32_(o.v32_),
      device_(o.device_ ? o.device_->clone(o.length_) : nullptr) {}

KVCache& KVCache::operator=(const KVCache& o) {
  if (this != &o) *this = KVCache(o);
  return *this;
}

void KVCache::sync_host() const {
  if (device_) device_->download(const_cast<KVCache&>(*this));
}

Backend parse_backend(const std::string& name) {
  if (name == "cpu") return Backend::CPU;
  if (name == "cuda") return Backend::CUDA;
  fail("unknown backend \"{}\" (expected cpu or cuda)", name);
}

void KVCache::store(int layer, int pos, const float* k, const float* v) {
  size_t o = offset(layer, pos);
  if (f16_) {
    f32_to_f16_row(k, &k16_[o], size_t(kv_dim_));
    f32_to_f16_row(v, &v16_[o], size_t(kv_dim_));
  } else {
    std::memcpy(&k32_[o], k, sizeof(float) * kv_dim_);
    std::memcpy(&v32_[o], v, sizeof(float) * kv_dim_);
  }
}

void KVCache::load_k(int layer, int pos, int h, float* out) const {
  size_t o = offset(layer, pos) + size_t(h) * head_dim_;
  if (f16_) to_f32(DType::F16, &k16_[o], out, size_t(head_dim_));
  else std::memcpy(out, &k32_[o], sizeof(float) * head_dim_);
}

void KVCache::load_v(int layer, int pos, int h, float* out) const {
  size_t o = offset(layer, pos) + size_t(h) * head_dim_;
  if (f16_) to_f32(DType::F16, &v16_[o], out, size_t(head_dim_));
  else std::memcpy(out, &v32_[o], sizeof(float) * head_dim_);
}

Transformer::Transformer(const Model& m, Backend backend)
    : m_(m), rope_(m.config.rotary_dim, m.config.rope_theta), backend_(backend) {
  if (backend == Backend::CUDA) gpu_ = cuda::DeviceModel::create(m);
}

Transformer::~Transformer() = default;

void Transformer::set_observer(Observer o) {
  PMPD_CHECK(!gpu_ || !o, "activation statistics are gathered on the CPU backend only");
  observer_ = std::move(o);
}

void Transformer::apply_norm(const Norm& nm, const float* x, float* out, int n) const {
  const ModelConfig& c = m_.config;
  auto norm_row = [&](int t) {
    const float* xi = x + int64_t(t) * c.dim;
    float* oi = out + int64_t(t) * c.dim;
    if (c.norm == NormKind::RMSNorm) kernels::rmsnorm(oi, xi, nm.weight.data(), c.dim, c.norm_eps);
    else kernels::layernorm(oi, xi, nm.weight.data(), nm.bias.empty() ? nullptr : nm.bias.data(), c.dim, c.norm_eps);
  };
  if (n == 1) return norm_row(0);  // a decode step: no parallel region (kernels::worth_threads says why)
#pragma omp parallel for
  for (int t = 0; t < n; ++t) norm_row(t);
}

namespace {
void add_bias(const Linear& l, float* y, int n) {
  if (!l.bias.empty())
    for (int t = 0; t < n; ++t) kernels::add(y + int64_t(t) * l.out(), l.bias.data(), int(l.out()));
}
}  // namespace

void Transformer::linear(const Linear& l, const float* x, int n, float* y, int bits) const {
  if (l.q) kernels::bitplane_matmul(*l.q, bits > 0 ? bits : l.q->bits_max, x, n, y);
  else kernels::matmul(l.w, x, n, y);
  add_bias(l, y, n);
}

void Transformer::linears(std::initializer_list<std::pair<const Linear*, float*>> ls, const float* x, int n,
                          int bits) const {
  // On the stack: this runs for every layer of every decode step.
  constexpr size_t kMost = 3;
  std::array<const kernels::BitPlaneMatrix*, kMost> ms{};
  std::array<float*, kMost> ys{};
  bool together = n == 1 && ls.size() > 1 && ls.size() <= kMost;
  for (const auto& [l, y] : ls) together = together && l->q;
  if (!together) {
    for (const auto& [l, y] : ls) linear(*l, x, n, y, bits);
    return;
  }
  size_t i = 0;
  for (const auto& [l, y] : ls) ms[i] = l->q.get(), ys[i] = y, ++i;
  kernels::bitplane_matvec_many({ms.data(), i}, bits > 0 ? bits : ms[0]->bits_max, x, {ys.data(), i});
  for (const auto& [l, y] : ls) add_bias(*l, y, 1);
}

void Transformer::attention(int layer, int n, int pos0, const float* q, KVCache& cache, float* out) {
  const ModelConfig& c = m_.config;
  const int hd = c.head_dim, group = c.n_heads / c.n_kv_heads, len_max = pos0 + n;
  const int64_t kv_dim = int64_t(c.n_kv_heads) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  // An f16 cache with whole vectors a head is read in place by kernels::attend_f16, for a
  // decode step and for each query of a prompt: it widens the rows in registers, and its dots
  // and sums run the f32 path's arithmetic, so the scores and outputs keep the bits of the
  // widened loops below. Other head sizes: a prompt's queries all read the same cached rows,
  // so the f16 cache is widened to f32 once here (the values load_k/load_v give) instead of
  // once per query and head.
  const bool kernel_f16 = cache.is_f16() && hd % 16 == 0;
  const bool widen = cache.is_f16() && n > 1 && !kernel_f16;
  std::vector<float> prompt_k, prompt_v;
  if (widen) {
    prompt_k.resize(size_t(len_max) * size_t(kv_dim)), prompt_v.resize(size_t(len_max) * size_t(kv_dim));
#pragma omp parallel for schedule(static)
    for (int p = 0; p < len_max; ++p)
      for (int h = 0; h < c.n_kv_heads; ++h) {
        cache.load_k(layer, p, h, &prompt_k[size_t(p * kv_dim + h * hd)]);
        cache.load_v(layer, p, h, &prompt_v[size_t(p * kv_dim + h * hd)]);
      }
  }
  auto key = [&](int p, int kvh, float* scratch) -> const float* {
    if (widen) return &prompt_k[size_t(p * kv_dim + kvh * hd)];
    if (cache.is_f16()) return cache.load_k(layer, p, kvh, scratch), scratch;
    return cache.k32(layer, p) + int64_t(kvh) * hd;
  };
  // A decode step of another head size reads the values in place (add_scaled_f16 keeps the
  // f32 loop's rounding) and scores a widened copy of each key.
  const bool decode_f16 = cache.is_f16() && !widen;
  auto value = [&](int p, int kvh) -> const float* {  // f32 rows: an f32 cache or a widened prompt
    if (widen) return &prompt_v[size_t(p * kv_dim + kvh * hd)];
    return cache.v32(layer, p) + int64_t(kvh) * hd;
  };
  // A decode step's heads read the cached rows once: a short context is less work than a team's wake-up.
  const size_t kv_bytes = size_t(len_max) * size_t(kv_dim) * 2 * (cache.is_f16() ? 2 : 4);
  // `heads` runs on every member of a team, or on this thread alone outside any region (its
  // `omp for`s are orphaned); scratch rows are kept per thread across layers and steps. With
  // the kernel a task takes one token's query heads that share a KV head (the whole group,
  // or in a decode step an equal part of it where the threads outnumber the KV heads), in one
  // call that reads the group's rows once.
  const bool team = n > 1 || kernels::worth_threads(kv_bytes);
  const int parts = team && n == 1 ? std::clamp(omp_get_max_threads() / c.n_kv_heads, 1, group) : 1;
  auto heads = [&] {
    thread_local std::vector<float> scores, kv;
    if (kernel_f16) {
      scores.resize(size_t(group) * size_t(len_max));
#pragma omp for collapse(2) schedule(dynamic)
      for (int t = 0; t < n; ++t) {
        for (int task = 0; task < c.n_kv_heads * parts; ++task) {
          const int kvh = task / parts, part = task % parts;
          const int h0 = kvh * group + group * part / parts, h1 = kvh * group + group * (part + 1) / parts;
          const int64_t at = int64_t(kvh) * hd, row = int64_t(t) * c.n_heads + h0;
          kernels::attend_f16(q + row * hd, h1 - h0, cache.k16(layer, 0) + at, cache.v16(layer, 0) + at, kv_dim,
                              pos0 + t + 1, hd, scale, scores.data(), out + row * hd);
        }
      }
      return;
    }
    scores.resize(size_t(len_max)), kv.resize(size_t(hd));
#pragma omp for collapse(2) schedule(dynamic)
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < c.n_heads; ++h) {
        const int len = pos0 + t + 1;  // causal: positions 0..pos0+t
        const float* qh = q + (int64_t(t) * c.n_heads + h) * hd;
        const int kvh = h / group;
        float* o = out + (int64_t(t) * c.n_heads + h) * hd;
        for (int p = 0; p < len; ++p) scores[p] = kernels::dot(DType::F32, key(p, kvh, kv.data()), qh, hd) * scale;
        kernels::softmax(scores.data(), len);
        std::fill(o, o + hd, 0.f);
        if (decode_f16) {
          const int64_t at = int64_t(kvh) * hd;
          for (int p = 0; p < len; ++p) kernels::add_scaled_f16(o, scores[p], cache.v16(layer, p) + at, hd);
        } else {
          for (int p = 0; p < len; ++p) {
            const float* v = value(p, kvh);
            const float w = scores[p];
            for (int i = 0; i < hd; ++i) o[i] += w * v[i];
          }
        }
      }
    }
  };
  if (team) {
#pragma omp parallel
    heads();
  } else {
    heads();
  }
}

int Transformer::check_pass(const int* tokens, int n, const KVCache& cache, int bits) const {
  const ModelConfig& c = m_.config;
  const int pos0 = cache.length();
  if (bits > 0 && m_.quantized())
    PMPD_CHECK(bits >= m_.quant.bits_min && bits <= m_.quant.bits_max, "{} bits requested; {} holds {} to {}", bits,
               m_.path, m_.quant.bits_min, m_.quant.bits_max);
  PMPD_CHECK(n > 0, "forward: no tokens");
  PMPD_CHECK(pos0 + n <= cache.max_seq(), "context of {} tokens exceeds the limit of {}", pos0 + n, cache.max_seq());
  for (int t = 0; t < n; ++t)
    PMPD_CHECK(tokens[t] >= 0 && tokens[t] < c.vocab_size, "token id {} outside the vocabulary of {}", tokens[t],
               c.vocab_size);
  return bits > 0 ? bits : m_.quantized() ? m_.quant.bits_max : 0;
}

int Transformer::forward_greedy(const int* tokens, int n, KVCache& cache, int bits) {
  if (gpu_) return gpu_->forward_greedy(tokens, n, cache, check_pass(tokens, n, cache, bits));
  // One buffer a thread, reused: a decode step of a small model is short enough for a fresh
  // vocabulary-sized allocation to show (the server runs passes from several threads).
  thread_local std::vector<float> logits;
  logits.resize(size_t(m_.config.vocab_size));
  forward(tokens, n, cache, logits.data(), false, bits);
  return int(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int Transformer::forward_sampled(const int* tokens, int n, KVCache& cache, int bits, const SampleDraw& d) {
  PMPD_CHECK(gpu_, "forward_sampled runs on the GPU backend; on the CPU: forward, then Sampler::pick");
  return gpu_->forward_sampled(tokens, n, cache, check_pass(tokens, n, cache, bits), d);
}

int64_t Transformer::queue_step(int token, int64_t after, KVCache& cache, int bits, const SampleDraw* draw) {
  const int probe = token >= 0 ? token : 0;  // a chained step's token was picked on the device: in the vocabulary
  const int width = check_pass(&probe, 1, cache, bits);
  if (gpu_) return gpu_->queue_step(token, after, cache, width, draw);
  PMPD_CHECK(!draw, "sampled steps are queued on the GPU backend; on the CPU: forward, then Sampler::pick");
  if (token < 0) token = take_step(after);
  const int next = forward_greedy(&token, 1, cache, bits);
  std::lock_guard<std::mutex> lock(cpu_queue_mu_);
  // Kept for the last kCpuQueueKept tickets, as the CUDA backend keeps its ring of slots.
  cpu_queue_.erase(cpu_queue_.begin(), cpu_queue_.lower_bound(cpu_next_ticket_ - kCpuQueueKept + 1));
  cpu_queue_[cpu_next_ticket_] = next;
  return cpu_next_ticket_++;
}

int Transformer::take_step(int64_t ticket) {
  if (gpu_) return gpu_->take_step(ticket);
  std::lock_guard<std::mutex> lock(cpu_queue_mu_);
  const auto it = cpu_queue_.find(ticket);
  PMPD_CHECK(it != cpu_queue_.end(), "greedy step {} is not queued ({} steps queued since)", ticket,
             cpu_next_ticket_ - ticket);
  return it->second;
}

void Transformer::forward(const int* tokens, int n, KVCache& cache, float* logits, bool all_logits, int bits) {
  const ModelConfig& c = m_.config;
  const int pos0 = cache.length();
  const int width = check_pass(tokens, n, cache, bits);
  if (gpu_) {
    gpu_->forward(tokens, n, cache, logits, all_logits, width);
    return;
  }
  PMPD_CHECK(!cache.device(), "this KV cache lives on a GPU; the CPU backend cannot extend it");
  const int64_t D = c.dim, F = c.hidden_dim, Q = int64_t(c.n_heads) * c.head_dim, KV = c.kv_dim();
  // The pass's activations, each written in full before it is read. A decode step reuses
  // this thread's (ten allocations a step fewer); a prompt's are sized by its length and
  // freed after it.
  struct Activations {
    std::vector<float> x, h, q, k, v, att, o, up, gate, mlp;
  };
  thread_local Activations step_buffers;
  Activations prompt_buffers;
  Activations& buffers = n == 1 ? step_buffers : prompt_buffers;
  auto& [x, h, q, k, v, att, o, up, gate, mlp] = buffers;
  for (auto [buffer, size] : {std::pair{&x, D}, {&h, D}, {&q, Q}, {&k, KV}, {&v, KV}, {&att, Q}, {&o, D}, {&up, F},
                              {&gate, c.gated_mlp ? F : 0}, {&mlp, D}})
    buffer->resize(size_t(n * size));
  for (int t = 0; t < n; ++t)
    to_f32(m_.token_embd.dtype, m_.token_embd.row_ptr(tokens[t]), &x[size_t(t * D)], size_t(D));
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = m_.layers[size_t(l)];
    apply_norm(w.attn_norm, x.data(), h.data(), n);
    observe(l, "attn_in", h.data(), n, int(D));
    linears({{&w.q, q.data()}, {&w.k, k.data()}, {&w.v, v.data()}}, h.data(), n, bits);
    for (int t = 0; t < n; ++t) {
      kernels::rope(&q[size_t(t * Q)], c.n_heads, c.head_dim, c.rotary_dim, pos0 + t, rope_, c.rope_interleaved);
      kernels::rope(&k[size_t(t * KV)], c.n_kv_heads, c.head_dim, c.rotary_dim, pos0 + t, rope_, c.rope_interleaved);
      cache.store(l, pos0 + t, &k[size_t(t * KV)], &v[size_t(t * KV)]);
    }
    attention(l, n, pos0, q.data(), cache, att.data());
    observe(l, "attn_out", att.data(), n, int(Q));
    linear(w.o, att.data(), n, o.data(), bits);
    // MLP input: the same normed x for a parallel block, else the residual after attention.
    const float* mlp_in = h.data();
    if (!c.parallel_residual) {
      kernels::add(x.data(), o.data(), int(n * D));
      apply_norm(w.ffn_norm, x.data(), h.data(), n);
    }
    observe(l, "ffn_in", mlp_in, n, int(D));
    if (c.gated_mlp) linears({{&w.up, up.data()}, {&w.gate, gate.data()}}, mlp_in, n, bits);
    else linear(w.up, mlp_in, n, up.data(), bits);
    if (c.gated_mlp) {
      if (c.act == Activation::SiLU) kernels::silu(gate.data(), int(n * F));
      else kernels::gelu_tanh(gate.data(), int(n * F));
      for (size_t i = 0; i < up.size(); ++i) up[i] *= gate[i];
    } else if (c.act == Activation::SiLU) {
      kernels::silu(up.data(), int(n * F));
    } else {
      kernels::gelu_tanh(up.data(), int(n * F));
    }
    observe(l, "ffn_mid", up.data(), n, int(F));
    linear(w.down, up.data(), n, mlp.data(), bits);
    if (c.parallel_residual) kernels::add(x.data(), o.data(), int(n * D));
    kernels::add(x.data(), mlp.data(), int(n * D));
  }
  cache.set_length(pos0 + n);
  const int first = all_logits ? 0 : n - 1, count = n - first;
  // The head's input: the normed rows whose logits are asked for, or every row where an
  // observer (the quantizer's calibration) sees the head's input at every position.
  const float* head_in = h.data();
  if (observer_) {
    apply_norm(m_.output_norm, x.data(), h.data(), n);
    observe(-1, "head_in", h.data(), n, int(D));
    head_in = &h[size_t(first * D)];
  } else {
    apply_norm(m_.output_norm, &x[size_t(first * D)], h.data(), count);
  }
  linear(m_.output, head_in, count, logits, bits);
}

}  // namespace pmpd
