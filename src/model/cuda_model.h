// The whole model resident on an NVIDIA GPU (--backend cuda): weights uploaded once
// (nested bit planes stay nested, so a width switch costs nothing), the KV cache on the
// device, the decode step replayed from one CUDA graph per width. Builds without CUDA
// get a stub whose create() explains how to enable it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "decode/sample_draw.h"
#include "kernels/cuda/decode_ceiling.h"
#include "kernels/cuda/sync_costs.h"

namespace pmpd {

class KVCache;
struct Model;

namespace cuda {

bool compiled();          // this build has the CUDA backend
int device_count();       // GPUs the runtime sees (0 without CUDA)
std::string device_name();  // the first GPU's name, or why there is none

// Time of one layer's projections, for pmpd bench: the attention projections (q, k, v,
// o) and the MLP projections (gate, up, down).
struct ProjectionTiming {
  double attn_seconds = 0, mlp_seconds = 0;
};

// The prefill cache (`--prefill-cache`) for models created after the call: each quantized
// matrix keeps its weights dequantized to f16 at the width of the last prompt that needed
// them, so later prompts at that width skip the dequantization (2 bytes a weight of device
// memory more; it stops growing where less than 2 GiB would stay free). Off by default, or
// as PMPD_CUDA_PREFILL_CACHE=1 says. Without CUDA: nothing.
void set_prefill_cache(bool on);

class DeviceModel {
 public:
  static std::unique_ptr<DeviceModel> create(const Model& m);
  virtual ~DeviceModel() = default;
  // Same contract as Transformer::forward; the cache's keys and values live on the
  // device (KVCache::sync_host copies them back for host readers).
  virtual void forward(const int* tokens, int n, KVCache& cache, float* logits, bool all_logits, int bits) = 0;
  // Same as Transformer::forward_greedy: the pass, then the argmax on the device; only
  // the token comes back.
  virtual int forward_greedy(const int* tokens, int n, KVCache& cache, int bits) = 0;
  // Same as Transformer::forward_sampled: the pass, then Sampler::pick's token for the
  // draw `d` computed on the device (kernels/cuda/sample.cu); only the token comes back.
  virtual int forward_sampled(const int* tokens, int n, KVCache& cache, int bits, const SampleDraw& d) = 0;
  // Decode steps queued ahead of the host (Transformer::queue_step): a step at `bits` whose
  // input is `token`, or for token < 0 the token of the queued step `after` (read on the
  // device where nothing else ran in between), its token the argmax or, with a draw, the
  // sampling kernel's; returns its ticket at once.
  virtual int64_t queue_step(int token, int64_t after, KVCache& cache, int bits, const SampleDraw* draw) = 0;
  // Waits for queued step `ticket` and returns its token.
  virtual int take_step(int64_t ticket) = 0;
  // Single-token projections at `bits` (0: the 16-bit weights), cycling through every
  // layer so the weights come from device memory, not the L2 cache; per-layer means.
  virtual ProjectionTiming time_projections(int bits, int reps) = 0;
  // Where one decode step's time goes at `bits`, `context` tokens into the cache (a step
  // captured with timing events between its stages): microseconds per stage, summed over
  // layers, in pass order; last, "step without stage marks": the whole step replayed
  // without those events, which cut the overlap of consecutive kernels.
  virtual std::vector<std::pair<std::string, double>> profile_step(int bits, int context) = 0;
  // Device memory the prefill cache holds (set_prefill_cache), bytes; 0 where it is off. Any
  // thread may ask.
  virtual size_t prefill_cache_bytes() const = 0;
};

// Device-to-device copy bandwidth, counting bytes read and written (GB/s): the ceiling
// the GEMV is judged against.
double copy_bandwidth_gbs();

}  // namespace cuda
}  // namespace pmpd
