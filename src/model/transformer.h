// The forward pass shared by every architecture: embeddings -> N x (attention + MLP)
// -> final norm -> LM head, with a KV cache so each new token costs one pass.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <initializer_list>
#include <utility>
#include <vector>

#include "decode/sample_draw.h"
#include "kernels/cpu/ops.h"
#include "model/model_loader.h"

namespace pmpd {

// Keys and values of every past position, per layer. Stored in f16 by default
// (DESIGN: the cache stays 16-bit whatever the weight precision) or f32 for exact
// comparisons with a reference.
class KVCache {
 public:
  // Where a GPU backend keeps this cache's keys and values. Copying a KVCache copies
  // them (calibration branches a generation by copying its cache).
  struct DeviceState {
    virtual ~DeviceState() = default;
    virtual std::unique_ptr<DeviceState> clone(int length) const = 0;  // copies positions [0, length)
    virtual void download(KVCache& host) const = 0;  // positions [0, host.length())
  };

  KVCache(const ModelConfig& c, int max_seq, bool f16 = true);
  KVCache(const KVCache& o);
  KVCache& operator=(const KVCache& o);
  KVCache(KVCache&&) noexcept = default;
  KVCache& operator=(KVCache&&) noexcept = default;
  int max_seq() const { return max_seq_; }
  int length() const { return length_; }
  int n_layers() const { return n_layers_; }
  int kv_heads() const { return kv_dim_ / head_dim_; }
  int head_dim() const { return head_dim_; }
  void truncate(int n) { length_ = n < length_ ? n : length_; }
  size_t bytes() const { return f16_ ? k16_.size() * 4 : k32_.size() * 8; }

  void store(int layer, int pos, const float* k, const float* v);
  // Copies key/value of (layer, pos) for kv head h into out (head_dim floats).
  void load_k(int layer, int pos, int h, float* out) const;
  void load_v(int layer, int pos, int h, float* out) const;
  const float* k32(int layer, int pos) const { return &k32_[offset(layer, pos)]; }
  const float* v32(int layer, int pos) const { return &v32_[offset(layer, pos)]; }
  const uint16_t* k16(int layer, int pos) const { return &k16_[offset(layer, pos)]; }
  const uint16_t* v16(int layer, int pos) const { return &v16_[offset(layer, pos)]; }
  bool is_f16() const { return f16_; }
  void set_length(int n) { length_ = n; }

  DeviceState* device() const { return device_.get(); }
  void set_device(std::unique_ptr<DeviceState> d) { device_ = std::move(d); }
  // Brings the host copy up to date where the cache lives on a GPU (a no-op otherwise);
  // readers of keys and values outside the forward pass (the learned scheduler) call it.
  void sync_host() const;
  // The f16 host storage of one layer ([max_seq][kv_dim]), for DeviceState::download.
  uint16_t* k16_layer(int layer) { return &k16_[size_t(layer) * max_seq_ * kv_dim_]; }
  uint16_t* v16_layer(int layer) { return &v16_[size_t(layer) * max_seq_ * kv_dim_]; }

 private:
  size_t offset(int layer, int pos) const { return (size_t(layer) * max_seq_ + pos) * kv_dim_; }
  int n_layers_, max_seq_, kv_dim_, head_dim_;
  bool f16_;
  int length_ = 0;
  std::vector<uint16_t> k16_, v16_;
  std::vector<float> k32_, v32_;
  std::unique_ptr<DeviceState> device_;
};

// Where the forward pass runs: the CPU kernels, or the model resident on a GPU.
enum class Backend { CPU, CUDA };
Backend parse_backend(const std::string& name);  // "cpu" or "cuda"

namespace cuda {
class DeviceModel;
}

class Transformer {
 public:
  explicit Transformer(const Model& m, Backend backend = Backend::CPU);
  ~Transformer();
  Backend backend() const { return backend_; }
  cuda::DeviceModel* device_model() const { return gpu_.get(); }  // null on the CPU backend
  const ModelConfig& config() const { return m_.config; }
  const Model& model() const { return m_; }

  // Runs n tokens at positions cache.length() .. +n-1 and appends them to the cache.
  // Writes logits of the last token to `logits` (vocab floats), or of every token
  // (n * vocab floats) when all_logits is set. `bits` is the weight precision of this
  // pass for quantized models (0: the highest stored); 16-bit models ignore it.
  void forward(const int* tokens, int n, KVCache& cache, float* logits, bool all_logits = false, int bits = 0);
  // The same pass for greedy decoding: returns the index of the last token's largest
  // logit (the first among equals). On the GPU the argmax runs on the device, so a decode
  // step brings back one int instead of the vocabulary's logits.
  int forward_greedy(const int* tokens, int n, KVCache& cache, int bits = 0);
  // The same pass for sampled decoding on the GPU: returns Sampler::pick's token for the
  // last token's logits and the draw `d` (Sampler::draw), computed on the device, so a step
  // brings back one int. The CPU backend has no such pass (forward, then Sampler::pick).
  int forward_sampled(const int* tokens, int n, KVCache& cache, int bits, const SampleDraw& d);
  // Decoding with the host one step behind the GPU (the CUDA backend): queue_step queues a
  // one-token step whose input is `token`, or for token < 0 the token of the step `after`
  // queued before it on this cache, and returns a ticket without waiting for the GPU;
  // take_step waits for a ticket's token: the greedy one, or with a `draw` Sampler::pick's
  // (made before the token before it is known: a draw without a repetition penalty). The
  // cache's length counts a step from when it is queued. The CPU backend runs the step in
  // queue_step. A ticket can be taken (and chained on) until 64 later steps have been
  // queued; after that taking it is an error. (Draws: the GPU backend only.)
  int64_t queue_step(int token, int64_t after, KVCache& cache, int bits = 0, const SampleDraw* draw = nullptr);
  int take_step(int64_t ticket);

  // Sees the input of every linear layer (for calibration statistics): slot is one of
  // attn_in (q, k, v), attn_out (o), ffn_in (gate, up), ffn_mid (down).
  using Observer = std::function<void(int layer, const char* slot, const float* x, int n, int cols)>;
  void set_observer(Observer o);

 private:
  // Checks a pass's tokens, context and width; returns the width to run (0: 16-bit).
  int check_pass(const int* tokens, int n, const KVCache& cache, int bits) const;
  void attention(int layer, int n, int pos0, const float* q, KVCache& cache, float* out);
  void apply_norm(const Norm& nm, const float* x, float* out, int n) const;
  void linear(const Linear& l, const float* x, int n, float* y, int bits) const;
  // Layers that read the same x (q, k and v; up and gate), y_i = l_i x: one token through
  // quantized layers is one integer product for all of them (x quantized once, one thread
  // team); otherwise one linear() each. The same numbers either way.
  void linears(std::initializer_list<std::pair<const Linear*, float*>> ls, const float* x, int n, int bits) const;
  void observe(int layer, const char* slot, const float* x, int n, int cols) const {
    if (observer_) observer_(layer, slot, x, n, cols);
  }

  const Model& m_;
  Observer observer_;
  kernels::RopeTable rope_;
  Backend backend_;
  std::unique_ptr<cuda::DeviceModel> gpu_;
  // The CPU backend's queued greedy steps: the tokens of the last kCpuQueueKept tickets.
  static constexpr int64_t kCpuQueueKept = 64;
  std::mutex cpu_queue_mu_;
  std::map<int64_t, int> cpu_queue_;
  int64_t cpu_next_ticket_ = 0;
};

}  // namespace pmpd
