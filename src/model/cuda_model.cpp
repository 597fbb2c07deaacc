// The model resident on the GPU (see cuda_model.h). Linear layers that read the same
// input are fused at upload (q|k|v, gate|up) so a decode step launches fewer, larger
// GEMVs; a pass of one token uses the GEMVs, a short prompt the tiled multi-token GEMM, a
// longer one dequantizes the layer to f16 and calls cuBLAS (prefill is compute-bound).
#include "model/cuda_model.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_array.h"
#include "kernels/cuda/timeline.h"
#include "model/cublas_loader.h"
#include "model/model_loader.h"
#include "model/transformer.h"

namespace pmpd::cuda {

bool compiled() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_name() {
  if (device_count() == 0) return "none (no CUDA device found)";
  cudaDeviceProp p{};
  PMPD_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  return p.name;
}

namespace {

// set_prefill_cache's setting for models created after it (-1: not set, PMPD_CUDA_PREFILL_CACHE decides).
int prefill_cache_setting = -1;
bool prefill_cache_default() {
  if (prefill_cache_setting >= 0) return prefill_cache_setting == 1;
  const char* e = std::getenv("PMPD_CUDA_PREFILL_CACHE");
  return e && std::atoi(e) != 0;
}

#define PMPD_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                            \
    cublasStatus_t st_ = (call);                                                                  \
    if (st_ != CUBLAS_STATUS_SUCCESS) cuda_fail(#call, cublas().status_string(st_), __FILE__, __LINE__); \
  } while (0)

// One or more linear layers fused along their outputs.
struct DeviceLinear {
  int64_t rows = 0, cols = 0;
  bool quantized = false, f32 = false;
  DevArray<uint8_t> dense;  // f16 or f32 [rows][cols]
  DevArray<uint8_t> planes;
  DevArray<uint32_t> tiled;  // planes 0..3 again for the tensor-core GEMV
  DevArray<uint16_t> tables[9];
  DevArray<int32_t> sp_rowptr, sp_col;
  DevArray<uint16_t> sp_val;
  DeviceBitPlanes q;
  DevArray<float> bias;
  // The prefill cache (--prefill-cache): the weights dequantized to f16 at prefill_bits, kept
  // for the next prompt at that width (filled by the first; 0: empty).
  mutable DevArray<uint16_t> prefill_f16;
  mutable int prefill_bits = 0;
};

// A host matrix (f32, f16 or bf16 rows) as f16 at device address dst.
void upload_as_f16(const TensorView& w, uint16_t* dst) {
  if (w.dtype == DType::F16) {
    PMPD_CUDA_CHECK(cudaMemcpy(dst, w.data, w.nbytes(), cudaMemcpyHostToDevice));
    return;
  }
  std::vector<float> row(size_t(w.cols()));
  std::vector<uint16_t> row16(row.size());
  for (int64_t r = 0; r < w.rows(); ++r) {  // widen, then narrow
    to_f32(w.dtype, w.row_ptr(r), row.data(), row.size());
    for (size_t i = 0; i < row.size(); ++i) row16[i] = ::pmpd::f32_to_f16(row[i]);
    PMPD_CUDA_CHECK(cudaMemcpy(dst + size_t(r) * row.size(), row16.data(), row16.size() * 2, cudaMemcpyHostToDevice));
  }
}

// Captures what `enqueue` puts on `stream` into an instantiated graph.
cudaGraphExec_t capture_graph(cudaStream_t stream, const std::function<void()>& enqueue) {
  cudaGraph_t graph = nullptr;
  PMPD_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  PMPD_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  PMPD_CUDA_CHECK(e);
  return exec;
}

// Seconds per replay of `exec` on `stream`, after one warm-up replay: the GPU's time, not
// the host's launch rate.
double seconds_per_replay(cudaGraphExec_t exec, cudaStream_t stream, int reps) {
  return seconds_per_call(stream, reps, [&] { PMPD_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
}

// interleave_halves: a fused gate|up matrix (two parts of equal rows) whose tiles put each
// gate row's up row in the same task, so its GEMV can write act(gate) * up for the down
// projection (GemvOutput::fragments).
// keep_planes: keep the on-disk planes beside the tiles even where the tiles serve every
// width (keep_planes_on_device).
DeviceLinear upload_linear(const std::vector<const Linear*>& parts, const std::string& what, bool keep_planes,
                           bool interleave_halves = false) {
  DeviceLinear d;
  const bool quantized = parts[0]->q != nullptr;
  d.quantized = quantized;
  d.cols = quantized ? parts[0]->q->cols : parts[0]->in();
  for (const Linear* p : parts) {
    PMPD_CHECK((p->q != nullptr) == quantized, "{}: fused layers mix quantized and 16-bit weights", what);
    PMPD_CHECK((quantized ? p->q->cols : p->in()) == d.cols, "{}: fused layers differ in input size", what);
    d.rows += quantized ? p->q->rows : p->out();
  }
  bool any_bias = false;
  for (const Linear* p : parts) any_bias |= !p->bias.empty();
  if (any_bias) {
    std::vector<float> b(size_t(d.rows), 0.f);
    int64_t off = 0;
    for (const Linear* p : parts) {
      const int64_t r = quantized ? p->q->rows : p->out();
      if (!p->bias.empty()) std::memcpy(&b[size_t(off)], p->bias.data(), sizeof(float) * size_t(r));
      off += r;
    }
    d.bias.reserve(b.size());
    d.bias.upload(b.data(), b.size());
  }

  if (!quantized) {
    d.f32 = true;
    for (const Linear* p : parts) d.f32 &= p->w.dtype == DType::F32;
    const size_t esize = d.f32 ? 4 : 2;
    d.dense.reserve(size_t(d.rows) * size_t(d.cols) * esize);
    size_t off = 0;  // bytes
    for (const Linear* p : parts) {
      const TensorView& w = p->w;
      if (d.f32) d.dense.upload(static_cast<const uint8_t*>(w.data), w.nbytes(), off);
      else upload_as_f16(w, reinterpret_cast<uint16_t*>(d.dense.get() + off));
      off += size_t(w.numel()) * esize;
    }
    return d;
  }

  const kernels::BitPlaneMatrix& q0 = *parts[0]->q;
  for (const Linear* p : parts) {
    const auto& q = *p->q;
    PMPD_CHECK(q.group_size == 0, "{}: the CUDA backend needs one centroid table per row; this file has a table per "
               "{} columns (pmpd quantize --method uniform); quantize with anyprec or dns, or run it with --backend cpu",
               what, q.group_size);
    PMPD_CHECK(q.bits_min == q0.bits_min && q.bits_max == q0.bits_max, "{}: fused layers store different widths", what);
  }
  d.q.rows = d.rows, d.q.cols = d.cols, d.q.plane_stride = q0.plane_stride;
  d.q.bits_min = q0.bits_min, d.q.bits_max = q0.bits_max;
  const size_t stride = size_t(q0.plane_stride);
  d.planes.reserve(size_t(q0.bits_max) * size_t(d.rows) * stride);
  int64_t row_off = 0;
  for (const Linear* p : parts) {
    const auto& q = *p->q;
    for (int k = 0; k < q.bits_max; ++k)
      d.planes.upload(q.plane(k, 0), size_t(q.rows) * stride, (size_t(k) * size_t(d.rows) + size_t(row_off)) * stride);
    row_off += q.rows;
  }
  d.q.planes = d.planes.get();
  for (int b = q0.bits_min; b <= q0.bits_max; ++b) {
    DevArray<uint16_t>& t = d.tables[b];
    t.reserve(size_t(d.rows) << b);
    int64_t off = 0;
    for (const Linear* p : parts) {
      t.upload(p->q->tables[size_t(b - q0.bits_min)], size_t(p->q->rows) << b, size_t(off) << b);
      off += p->q->rows;
    }
    d.q.tables[b] = t.get();
  }
  // Widths 2..8 decode on tensor cores from a tiled copy of the planes (pair_lut_gemv.cu;
  // 8 more bits a weight on the device at 8 planes). PMPD_CUDA_TILES=N tiles only planes
  // 0..N-1 (widths past N on the bit-plane GEMV, less memory); 0 keeps every width there.
  const char* tiles_env = std::getenv("PMPD_CUDA_TILES");
  const int tiled_planes = std::min({kTiledPlanesMax, q0.bits_max, tiles_env ? std::max(0, std::atoi(tiles_env)) : kTiledPlanesMax});
  if (tiled_planes >= 2 && q0.bits_min <= tiled_planes) {
    if (interleave_halves && parts.size() == 2 && parts[0]->q->rows == parts[1]->q->rows) d.q.tiles_interleave = d.rows / 2;
    d.tiled.reserve(size_t(tiled_words(d.q, tiled_planes)));
    tile_bitplanes(d.q, tiled_planes, d.tiled.get(), nullptr);
    PMPD_CUDA_CHECK(cudaDeviceSynchronize());
    d.q.tiled = d.tiled.get(), d.q.tiled_planes = tiled_planes;
    // Where the tensor-core GEMV serves every width, the tiles can be the only copy: the
    // prefill then dequantizes from them and the DNS corrections read codes there.
    bool tiles_serve_all = tiled_planes == q0.bits_max && q0.bits_min >= 2;
    for (int b = q0.bits_min; tiles_serve_all && b <= q0.bits_max; ++b) tiles_serve_all = pair_lut_serves(d.q, b);
    if (tiles_serve_all && !keep_planes) d.planes = DevArray<uint8_t>(), d.q.planes = nullptr;
  }
  int64_t nnz = 0;
  for (const Linear* p : parts) nnz += p->q->nnz;
  if (nnz > 0) {
    std::vector<int32_t> rowptr(size_t(d.rows) + 1, 0), col;
    std::vector<uint16_t> val;
    int64_t r0 = 0;
    for (const Linear* p : parts) {
      const auto& q = *p->q;
      for (int64_t r = 0; r < q.rows; ++r) {
        if (q.nnz)
          for (int32_t i = q.sp_rowptr[r]; i < q.sp_rowptr[r + 1]; ++i) col.push_back(q.sp_col[i]), val.push_back(q.sp_val[i]);
        rowptr[size_t(r0 + r + 1)] = int32_t(col.size());
      }
      r0 += q.rows;
    }
    d.sp_rowptr.reserve(rowptr.size()), d.sp_rowptr.upload(rowptr.data(), rowptr.size());
    d.sp_col.reserve(col.size()), d.sp_col.upload(col.data(), col.size());
    d.sp_val.reserve(val.size()), d.sp_val.upload(val.data(), val.size());
    d.q.sp_rowptr = d.sp_rowptr.get(), d.q.sp_col = d.sp_col.get(), d.q.sp_val = d.sp_val.get();
    d.q.nnz = nnz;
  }
  return d;
}

// Whether quantized layers keep their on-disk planes on the device beside the tiles. Where
// the tiles serve every width they are the only copy by default (half the weight memory):
// the prompt pass dequantizes from them faster than from the planes (Vicuna-7B, 512-token
// prompt, 3 bits: 18.9k against 16.5k tokens/s, docs/cuda.md). PMPD_CUDA_PLANES=keep keeps
// both (for comparisons), drop is the default.
bool keep_planes_on_device() {
  const char* e = std::getenv("PMPD_CUDA_PLANES");
  if (!e) return false;
  const std::string v = e;
  PMPD_CHECK(v == "keep" || v == "drop", "PMPD_CUDA_PLANES={}: expected keep or drop", v);
  return v == "keep";
}

DevArray<float> upload_floats(const std::vector<float>& v) {
  DevArray<float> d;
  if (v.empty()) return d;
  d.reserve(v.size());
  d.upload(v.data(), v.size());
  return d;
}

// A norm's weights on the device. Folded into the GEMV before (norm_folds), an RMSNorm's
// weights become f16(w * x) in that GEMV: so that it cannot overflow where x fits f16, the
// weights are divided by the power of two fold_gain that brings every |w| to at most 1, and the
// next GEMV multiplies its scale by fold_gain again. Powers of two scale exactly: the same bits
// as w itself wherever w * x fits f16 (outside f16's subnormal range).
struct DeviceNorm {
  DevArray<float> w, b;
  DevArray<float> w_fold;  // w / fold_gain, where fold_gain > 1
  float fold_gain = 1.f;
  bool foldable = false;  // finite weights within 2^15 of 1 (fold_gain then exact in f32)
  const float* fold_weights() const { return fold_gain > 1.f ? w_fold.get() : w.get(); }
};

DeviceNorm upload_norm(const Norm& n) {
  DeviceNorm d;
  d.w = upload_floats(n.weight), d.b = upload_floats(n.bias);
  float most = 0.f;
  for (float e : n.weight) most = std::max(most, std::fabs(e));  // (a NaN keeps most; caught below)
  const bool finite = std::all_of(n.weight.begin(), n.weight.end(), [](float e) { return std::isfinite(e); });
  int exponent = 0;
  if (most > 1.f) std::frexp(most, &exponent);  // most = f 2^exponent, f in [0.5, 1): most / 2^exponent < 1
  d.foldable = finite && exponent <= 15;
  if (d.foldable && exponent > 0) {
    d.fold_gain = std::ldexp(1.f, exponent);
    std::vector<float> scaled(n.weight);
    for (float& e : scaled) e = std::ldexp(e, -exponent);
    d.w_fold = upload_floats(scaled);
  }
  return d;
}

struct DeviceLayer {
  DeviceNorm attn_norm, ffn_norm;
  DeviceLinear qkv, o, gate_up, down;
};

// A cache's keys and values on the device: [layer][max_seq][kv_dim] f16, as on the host.
class DeviceKV : public KVCache::DeviceState {
 public:
  DeviceKV(int layers, int max_seq, int kv_dim)
      : id_(next_id()), layers_(layers), max_seq_(max_seq), kv_dim_(kv_dim), k_(size_t(layers) * max_seq * kv_dim),
        v_(size_t(layers) * max_seq * kv_dim) {}
  std::unique_ptr<KVCache::DeviceState> clone(int length) const override {
    auto c = std::make_unique<DeviceKV>(layers_, max_seq_, kv_dim_);
    const size_t n = size_t(length) * kv_dim_ * 2;
    for (int l = 0; l < layers_; ++l) {
      PMPD_CUDA_CHECK(cudaMemcpy(c->k(l), k(l), n, cudaMemcpyDeviceToDevice));
      PMPD_CUDA_CHECK(cudaMemcpy(c->v(l), v(l), n, cudaMemcpyDeviceToDevice));
    }
    return c;
  }
  void download(KVCache& host) const override {
    const size_t n = size_t(host.length()) * kv_dim_ * 2;
    for (int l = 0; l < layers_; ++l) {
      PMPD_CUDA_CHECK(cudaMemcpy(host.k16_layer(l), k(l), n, cudaMemcpyDeviceToHost));
      PMPD_CUDA_CHECK(cudaMemcpy(host.v16_layer(l), v(l), n, cudaMemcpyDeviceToHost));
    }
  }
  uint16_t* k(int l) const { return k_.get() + size_t(l) * max_seq_ * kv_dim_; }
  uint16_t* v(int l) const { return v_.get() + size_t(l) * max_seq_ * kv_dim_; }
  // Unique for the process: a new cache may reuse a freed one's address, never its id.
  uint64_t id() const { return id_; }

 private:
  static uint64_t next_id() {
    static std::atomic<uint64_t> n{0};
    return ++n;
  }
  uint64_t id_;
  int layers_, max_seq_, kv_dim_;
  DevArray<uint16_t> k_, v_;
};

class CudaModel : public DeviceModel {
 public:
  explicit CudaModel(const Model& m) : m_(m), c_(m.config) {
    PMPD_CHECK(device_count() > 0, "--backend cuda: no usable GPU, device {}; --backend cpu runs without one", device_name());
    const ModelConfig& c = c_;
    PMPD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    PMPD_CUBLAS_CHECK(cublas().create(&blas_));
    PMPD_CUBLAS_CHECK(cublas().set_stream(blas_, stream_));
    // A fixed workspace lets cuBLAS calls be captured into CUDA graphs.
    workspace_.reserve(32u << 20);
    PMPD_CUBLAS_CHECK(cublas().set_workspace(blas_, workspace_.get(), workspace_.bytes()));

    const bool keep_planes = keep_planes_on_device();
    // Embeddings as f16 rows.
    embd_.reserve(size_t(m.token_embd.numel()));
    upload_as_f16(m.token_embd, embd_.get());
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerWeights& w = m.layers[size_t(l)];
      const std::string what = fmt::format("layer {}", l);
      DeviceLayer d;
      d.attn_norm = upload_norm(w.attn_norm);
      d.ffn_norm = upload_norm(w.ffn_norm);
      d.qkv = upload_linear({&w.q, &w.k, &w.v}, what + " attention q|k|v", keep_planes);
      d.o = upload_linear({&w.o}, what + " attention output", keep_planes);
      d.gate_up = c.gated_mlp ? upload_linear({&w.gate, &w.up}, what + " MLP gate|up", keep_planes, true)
                              : upload_linear({&w.up}, what + " MLP up", keep_planes);
      d.down = upload_linear({&w.down}, what + " MLP down", keep_planes);
      layers_.push_back(std::move(d));
    }
    out_norm_ = upload_norm(m.output_norm);
    output_ = upload_linear({&m.output}, "output head", keep_planes);

    kernels::RopeTable rope(c.rotary_dim, c.rope_theta);
    inv_freq_ = upload_floats(rope.inv_freq.empty() ? std::vector<float>{0.f} : rope.inv_freq);
    max_ctx_ = c.max_seq_len;
    PMPD_CHECK(c.head_dim <= 256 && attention_smem_bytes(c.head_dim, max_ctx_) <= 200u * 1024,
               "--backend cuda: a context of {} tokens is beyond the attention kernel's shared memory", max_ctx_);
    step_.reserve(1);
    token_out_.reserve(1);
    slots_.reserve(size_t(2 * c.n_layers));
    attn_splits_ = attention_decode_splits(c.n_heads, c.head_dim, max_ctx_, 1);
    // Room for the most splits any context takes (attention_decode_splits grows with it).
    attn_partial_.reserve(attention_decode_partial_floats(c.n_heads, c.head_dim,
                                                          attention_decode_splits(c.n_heads, c.head_dim, max_ctx_, max_ctx_)));
    attn_counters_.reserve(size_t(c.n_heads));
    PMPD_CUDA_CHECK(cudaMemset(attn_counters_.get(), 0, attn_counters_.bytes()));
    PMPD_CUDA_CHECK(cudaMallocHost(&pinned_, kPinnedBytes));
    const char* g = std::getenv("PMPD_CUDA_GRAPHS");
    use_graphs_ = !(g && std::string(g) == "0");
  }

  ~CudaModel() override {
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    for (cudaEvent_t e : queue_events_)
      if (e) cudaEventDestroy(e);
    if (pinned_) cudaFreeHost(pinned_);
    if (blas_) cublas().destroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  ProjectionTiming time_projections(int bits, int reps) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!m_.quantized()) bits = 0;
    reserve(1, false);
    ProjectionTiming t;
    auto time = [&](bool attn) {
      auto body = [&] {
        for (auto& l : layers_) {
          if (attn) {
            linear(l.qkv, h_.get(), 1, qkv_.get(), bits);
            if (o_fragments(l, bits)) gemv(l.o, fragment_input(att_fragments_.get()), o_.get(), false, bits);
            else linear(l.o, att_.get(), 1, o_.get(), bits);
          }
          else if (mlp_fragments(l, bits))  // as the decode step runs them
            gemv(l.gate_up, plain_input(h_.get()), gu_.get(), false, bits, mlp_fragments_.get()),
                gemv(l.down, fragment_input(mlp_fragments_.get()), mlp_.get(), false, bits);
          else linear(l.gate_up, h_.get(), 1, gu_.get(), bits), linear(l.down, mid_.get(), 1, mlp_.get(), bits);
        }
      };
      // Replayed from a graph, as the decode step is: the time is the GPU's, not the
      // host's launch rate.
      cudaGraphExec_t exec = capture_graph(stream_, body);
      const double seconds = seconds_per_replay(exec, stream_, reps);
      cudaGraphExecDestroy(exec);
      return seconds / double(layers_.size());
    };
    PMPD_CUDA_CHECK(cudaMemsetAsync(h_.get(), 0, h_.bytes(), stream_));
    PMPD_CUDA_CHECK(cudaMemsetAsync(att_.get(), 0, att_.bytes(), stream_));
    PMPD_CUDA_CHECK(cudaMemsetAsync(mid_.get(), 0, mid_.bytes(), stream_));
    t.attn_seconds = time(true);
    t.mlp_seconds = time(false);
    return t;
  }

  size_t prefill_cache_bytes() const override { return prefill_cache_bytes_; }

  std::vector<std::pair<std::string, double>> profile_step(int bits, int context) override {
    const ModelConfig& c = c_;
    context = std::clamp(context, 1, c.max_seq_len - 1);
    KVCache cache(c, context + 1, true);
    std::vector<int> prompt(size_t(context), 1);
    std::vector<float> logits(size_t(c.vocab_size));
    forward(prompt.data(), int(prompt.size()), cache, logits.data(), false, bits);
    std::lock_guard<std::mutex> lock(mu_);
    if (!m_.quantized()) bits = 0;
    // The replays below decode the token at position `context` (the prompt pass left 0).
    auto* st = reinterpret_cast<StepState*>(pinned_);
    st->pos0 = context;
    attn_splits_ = attention_decode_splits(c.n_heads, c.head_dim, max_ctx_, context + 1);
    PMPD_CUDA_CHECK(cudaMemcpyAsync(step_.get(), st, sizeof(StepState), cudaMemcpyHostToDevice, stream_));
    // One step captured with its events, replayed once to warm up, once to time.
    std::vector<std::pair<std::string, cudaEvent_t>> marks;
    marks_ = &marks;
    cudaGraphExec_t exec = nullptr;
    try {
      exec = capture_graph(stream_, [&] { enqueue_pass(1, bits, false); });
    } catch (...) {
      marks_ = nullptr;
      throw;
    }
    marks_ = nullptr;
    PMPD_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
    PMPD_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
    PMPD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    // The same step without the marks, whose events cut the kernels' overlap: the step's
    // real time on the GPU.
    cudaGraphExec_t plain = capture_graph(stream_, [&] { enqueue_pass(1, bits, false); });
    const double plain_seconds = seconds_per_replay(plain, stream_, 10);
    cudaGraphExecDestroy(plain);
    std::vector<std::pair<std::string, double>> out;
    for (size_t i = 1; i < marks.size(); ++i) {
      float ms = 0;
      PMPD_CUDA_CHECK(cudaEventElapsedTime(&ms, marks[i - 1].second, marks[i].second));
      auto it = std::find_if(out.begin(), out.end(), [&](auto& p) { return p.first == marks[i].first; });
      if (it == out.end()) out.emplace_back(marks[i].first, 0.0), it = out.end() - 1;
      it->second += double(ms) * 1e3;
    }
    for (auto& [name, e] : marks) cudaEventDestroy(e);
    cudaGraphExecDestroy(exec);
    out.emplace_back("step without stage marks", plain_seconds * 1e6);
    return out;
  }

  void forward(const int* tokens, int n, KVCache& cache, float* logits, bool all_logits, int bits) override {
    std::lock_guard<std::mutex> lock(mu_);
    const int pos0 = begin_pass(tokens, n, cache, all_logits, bits);
    run_pass(n, bits, all_logits, false);
    const int rows = all_logits ? n : 1;
    PMPD_CUDA_CHECK(cudaMemcpyAsync(logits, logits_.get(), sizeof(float) * size_t(rows) * c_.vocab_size,
                                    cudaMemcpyDeviceToHost, stream_));
    PMPD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    cache.set_length(pos0 + n);
  }

  int forward_greedy(const int* tokens, int n, KVCache& cache, int bits) override {
    return token_pass(tokens, n, cache, bits, nullptr);
  }

  int forward_sampled(const int* tokens, int n, KVCache& cache, int bits, const SampleDraw& d) override {
    return token_pass(tokens, n, cache, bits, &d);
  }

  int64_t queue_step(int token, int64_t after, KVCache& cache, int bits, const SampleDraw* draw) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* kv = dynamic_cast<DeviceKV*>(cache.device());
    // The device holds the input only if the last pass was the queued step `after` of this cache.
    const bool chained = token < 0 && kv && after >= 0 && after == last_queued_ticket_ && kv->id() == last_queued_kv_;
    if (token < 0 && !chained) token = take_locked(after);  // another pass came between: wait for the token
    int pos0;
    if (chained) {
      pos0 = cache.length();
      if (!m_.quantized()) bits = 0;
      attn_splits_ = attention_decode_splits(c_.n_heads, c_.head_dim, max_ctx_, pos0 + 1);
    } else {
      pos0 = begin_pass(&token, 1, cache, false, bits);
    }
    run_pass(1, bits, false, draw == nullptr);
    if (draw) enqueue_sample(*draw, 1);
    const int64_t ticket = next_ticket_++;
    const int slot = int(ticket % kQueueSlots);
    if (!queue_events_[slot]) PMPD_CUDA_CHECK(cudaEventCreateWithFlags(&queue_events_[slot], cudaEventDisableTiming));
    queue_tickets_[slot] = ticket;
    PMPD_CUDA_CHECK(cudaMemcpyAsync(queue_slot(slot), token_out_.get(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    PMPD_CUDA_CHECK(cudaEventRecord(queue_events_[slot], stream_));
    cache.set_length(pos0 + 1);
    last_queued_ticket_ = ticket, last_queued_kv_ = dynamic_cast<DeviceKV*>(cache.device())->id();
    return ticket;
  }

  int take_step(int64_t ticket) override {
    std::lock_guard<std::mutex> lock(mu_);
    return take_locked(ticket);
  }

 private:
  static constexpr size_t kPinnedBytes = 1u << 20;
  // Pinned memory: the step state at 0, a pass's token ids from 64, the queued greedy steps'
  // tokens (a ring of slots, 16 bytes apart) and forward_greedy's token at the end.
  static constexpr int kQueueSlots = 64;
  static constexpr size_t kQueueOffset = kPinnedBytes - 64 - 16 * kQueueSlots;
  int* queue_slot(int slot) const { return reinterpret_cast<int*>(pinned_ + kQueueOffset + 16 * size_t(slot)); }

  // The token of queued step `ticket` (the caller holds mu_): waits for its copy to land. A
  // ticket whose slot a later step took (kQueueSlots queued since) is an error, not a stale read.
  int take_locked(int64_t ticket) {
    const int slot = int(ticket % kQueueSlots);
    PMPD_CHECK(ticket >= 0 && ticket < next_ticket_ && queue_tickets_[slot] == ticket,
               "--backend cuda: greedy step {} is no longer queued ({} steps queued since)", ticket, next_ticket_ - ticket);
    PMPD_CUDA_CHECK(cudaEventSynchronize(queue_events_[slot]));
    return *queue_slot(slot);
  }

  // forward_greedy and forward_sampled: the pass, then its token on the device (the argmax
  // in the pass's graph, or the sampling kernel on its logits for a draw); only the token
  // comes back.
  int token_pass(const int* tokens, int n, KVCache& cache, int bits, const SampleDraw* draw) {
    std::lock_guard<std::mutex> lock(mu_);
    const int pos0 = begin_pass(tokens, n, cache, false, bits);
    run_pass(n, bits, false, draw == nullptr);
    if (draw) enqueue_sample(*draw, n);
    int* host = reinterpret_cast<int*>(pinned_ + kPinnedBytes - 64);  // past the token ids (begin_pass checks)
    PMPD_CUDA_CHECK(cudaMemcpyAsync(host, token_out_.get(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    PMPD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    cache.set_length(pos0 + n);
    return *host;
  }

  // The sampling kernel on the last pass (of n tokens)'s logits for the draw d, its token into
  // token_out_ and, as the argmax leaves them, the next step's input and position.
  void enqueue_sample(const SampleDraw& d, int n) {
    SampleParams p;
    p.temperature = d.temperature, p.top_k = d.top_k, p.top_p = d.top_p, p.min_p = d.min_p;
    p.repeat_penalty = d.repeat_penalty, p.u = d.u;
    p.n_penalized = d.repeat_penalty != 1.f ? int(d.penalized.size()) : 0;
    if (p.n_penalized) {
      penalized_.reserve(d.penalized.size());
      // From pageable memory: the copy is staged before cudaMemcpyAsync returns.
      PMPD_CUDA_CHECK(cudaMemcpyAsync(penalized_.get(), d.penalized.data(), sizeof(int) * d.penalized.size(),
                                      cudaMemcpyHostToDevice, stream_));
    }
    sample_mass_.reserve(size_t(c_.vocab_size));
    sample_token(logits_.get(), c_.vocab_size, p, penalized_.get(), sample_mass_.get(), token_out_.get(), stream_,
                 NextStep{tokens_.get(), step_.get(), n});
  }

  // What every pass does first (the caller holds mu_): binds the cache (on the device from
  // its first pass), sizes the buffers, and copies the per-pass values through pinned
  // memory: the token ids, the position, and (when the cache changed) its layer addresses.
  // Returns the pass's first position.
  int begin_pass(const int* tokens, int n, KVCache& cache, bool all_logits, int& bits) {
    const ModelConfig& c = c_;
    PMPD_CHECK(cache.is_f16(), "--backend cuda keeps a 16-bit KV cache; drop --kv f32");
    PMPD_CHECK(64 + size_t(n) * sizeof(int) <= kQueueOffset, "--backend cuda: a pass of {} tokens is too long", n);
    last_queued_ticket_ = -1;  // this pass moves the device's token and position
    auto* kv = dynamic_cast<DeviceKV*>(cache.device());
    if (!kv) {
      PMPD_CHECK(cache.length() == 0, "this KV cache was filled on the CPU; the CUDA backend cannot extend it");
      auto fresh = std::make_unique<DeviceKV>(c.n_layers, cache.max_seq(), c.kv_dim());
      kv = fresh.get();
      cache.set_device(std::move(fresh));
    }
    const int pos0 = cache.length();
    if (!m_.quantized()) bits = 0;  // Transformer::forward checked the width
    reserve(n, all_logits);
    auto* st = reinterpret_cast<StepState*>(pinned_);
    st->pos0 = pos0;
    attn_splits_ = attention_decode_splits(c.n_heads, c.head_dim, max_ctx_, pos0 + n);
    int* tok = reinterpret_cast<int*>(pinned_ + 64);
    std::memcpy(tok, tokens, sizeof(int) * size_t(n));
    PMPD_CUDA_CHECK(cudaMemcpyAsync(step_.get(), st, sizeof(StepState), cudaMemcpyHostToDevice, stream_));
    PMPD_CUDA_CHECK(cudaMemcpyAsync(tokens_.get(), tok, sizeof(int) * size_t(n), cudaMemcpyHostToDevice, stream_));
    if (kv->id() != bound_kv_) {
      std::vector<uint16_t*> s(size_t(2 * c.n_layers));
      for (int l = 0; l < c.n_layers; ++l) s[size_t(2 * l)] = kv->k(l), s[size_t(2 * l + 1)] = kv->v(l);
      PMPD_CUDA_CHECK(cudaMemcpyAsync(slots_.get(), s.data(), sizeof(void*) * s.size(), cudaMemcpyHostToDevice, stream_));
      PMPD_CUDA_CHECK(cudaStreamSynchronize(stream_));  // s is pageable and about to go
      bound_kv_ = kv->id();
    }
    return pos0;
  }

  void reserve(int n, bool all_logits) {
    const ModelConfig& c = c_;
    if (n <= capacity_ && (!all_logits || n <= logit_rows_)) return;
    const size_t N = size_t(std::max(n, capacity_));
    const size_t D = size_t(c.dim), F = size_t(c.hidden_dim), Q = size_t(c.n_heads) * c.head_dim, KV = size_t(c.kv_dim());
    x_.reserve(N * D), h_.reserve(N * D), o_.reserve(N * D), mlp_.reserve(N * D);
    qkv_.reserve(N * (Q + 2 * KV)), att_.reserve(N * Q);
    gu_.reserve(N * F * (c.gated_mlp ? 2 : 1)), mid_.reserve(N * F);
    if (!mlp_fragments_) {  // zero past F (and Q) for good: the kernels write columns 0..F-1 only
      mlp_fragments_.reserve(size_t(fragment_halves(int64_t(F))));
      PMPD_CUDA_CHECK(cudaMemset(mlp_fragments_.get(), 0, mlp_fragments_.bytes()));
      att_fragments_.reserve(size_t(fragment_halves(int64_t(Q))));
      PMPD_CUDA_CHECK(cudaMemset(att_fragments_.get(), 0, att_fragments_.bytes()));
      norm_fragments_.reserve(size_t(fragment_halves(int64_t(D))));
      PMPD_CUDA_CHECK(cudaMemset(norm_fragments_.get(), 0, norm_fragments_.bytes()));
      norm_sumsq_.reserve(size_t(2 * c.n_layers + 1) * ((D + 15) / 16));  // sumsq_slot's layout
      // the column slices' scratch (GemvOutput::slice_partials), for the tallest matrix
      slice_tasks_ = (int64_t(std::max({D, F * 2, Q + 2 * KV})) + 15) / 16;
      slice_partials_.reserve(size_t(slice_partial_floats(slice_tasks_ * 16)));
      slice_counts_.reserve(size_t(slice_tasks_));
      PMPD_CUDA_CHECK(cudaMemset(slice_counts_.get(), 0, slice_counts_.bytes()));
    }
    tokens_.reserve(N);
    size_t max_cols = std::max({D, F, Q});
    pro_.reserve(max_cols);
    size_t max_rows = std::max({D, F * 2, Q + 2 * KV});
    tmp_.reserve(max_rows);
    // the f16 copy of an activation for cuBLAS, or (PMPD_CUDA_TILE_GEMM=1) the GEMM tile's x
    const size_t tile_x = tile_gemm_on_ ? size_t(tile_gemm_scratch_halves(int(N), int64_t(max_cols))) : 0;
    x16_.reserve(std::max(N * max_cols, tile_x));
    if (N > 1) {  // the prefill path dequantizes one (fused) layer at a time
      size_t w = output_.quantized ? size_t(output_.rows * output_.cols) : 0;
      for (auto& l : layers_)
        for (const DeviceLinear* d : {&l.qkv, &l.o, &l.gate_up, &l.down})
          if (d->quantized) w = std::max(w, size_t(d->rows * d->cols));
      wscratch_.reserve(w);
    }
    const size_t lr = all_logits ? N : 1;
    logits_.reserve(lr * size_t(c.vocab_size));
    logit_rows_ = std::max<int>(logit_rows_, int(lr));
    capacity_ = int(N);
    // Buffers moved: graphs captured before hold the old addresses.
    for (auto& [b, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }

  // A pass after begin_pass: a decode step replays its graph (one per width, and per
  // whether it ends with the greedy token's argmax), anything else is launched directly.
  void run_pass(int n, int bits, bool all_logits, bool greedy) {
    if (n > 1 || !use_graphs_) return enqueue_pass(n, bits, all_logits, greedy);
    const GraphKey key{bits, greedy, attn_splits_};
    auto it = graphs_.find(key);
    if (it == graphs_.end())
      it = graphs_.emplace(key, capture_graph(stream_, [&] { enqueue_pass(1, bits, false, greedy); })).first;
    const bool record = timeline_replay(key);
    if (record) timeline::begin_capture();
    PMPD_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
    if (record) {
      const char* out = std::getenv("PMPD_CUDA_TIMELINE_OUT");
      timeline::write_csv(std::string(out) + "-b" + std::to_string(bits) + ".csv", timeline::end_capture());
    }
  }

  // Diagnostic builds (timeline.h): whether this replay of a decode graph is the one to record,
  // the PMPD_CUDA_TIMELINE_STEP-th (default 16) of its graph where PMPD_CUDA_TIMELINE_OUT names
  // where the records go (OUT-b<bits>.csv).
  bool timeline_replay(const std::tuple<int, bool, int>& key) {  // a GraphKey
    if (!timeline::compiled() || !std::getenv("PMPD_CUDA_TIMELINE_OUT")) return false;
    const char* step = std::getenv("PMPD_CUDA_TIMELINE_STEP");
    return ++timeline_replays_[key] == (step ? std::atoi(step) : 16);
  }

  // The norm of n rows of x into out, after the residual adds x += add0 (+= add1) where given;
  // out16: also out rounded to f16 there (the next linear's cuBLAS input, `x16_ready`).
  void norm(const DeviceNorm& nm, float* x, float* out, int n, const float* add0 = nullptr, const float* add1 = nullptr,
            uint16_t* out16 = nullptr) {
    norm_rows(c_.norm == NormKind::RMSNorm, x, add0, add1, nm.w.get(), nm.b.get(), out, out16, n, c_.dim, c_.norm_eps,
              stream_);
  }

  // The prefill cache (--prefill-cache, set_prefill_cache): l's weights at `bits` as f16 rows
  // kept from the prompt that first asked for them, so a later prompt at the same width skips
  // the dequantization (at 128 tokens as long as the GEMMs themselves) and multiplies like a
  // 16-bit model; another width dequantizes into the same rows. nullptr where the cache is off
  // or the device would keep less than prefill_cache_headroom_ free after the rows (said once).
  const uint16_t* prefill_weights(const DeviceLinear& l, int bits) {
    if (!prefill_cache_on_) return nullptr;
    if (l.prefill_bits == bits) return l.prefill_f16.get();
    if (!l.prefill_f16) {
      if (prefill_cache_full_) return nullptr;  // it stopped growing: no memory query a prompt
      const size_t elems = size_t(l.rows * l.cols), bytes = elems * 2;
      size_t free_bytes = 0, total_bytes = 0;
      PMPD_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      bool fits = free_bytes >= bytes + prefill_cache_headroom_;
      if (fits) {
        try {
          l.prefill_f16.reserve(elems);
        } catch (const Error&) {  // free but fragmented: the same as full
          fits = false;
        }
      }
      if (!fits) {
        std::fprintf(stderr,
                     "pmpd: the prefill cache stops at %.1f GiB: the GPU keeps %.1f GiB free; the other matrices "
                     "dequantize for each prompt\n",
                     double(prefill_cache_bytes_.load()) / double(1u << 30), double(free_bytes) / double(1u << 30));
        prefill_cache_full_ = true;
        return nullptr;
      }
      prefill_cache_bytes_ += bytes;
    }
    bitplane_dequant_f16(l.q, bits, l.prefill_f16.get(), stream_);
    l.prefill_bits = bits;
    return l.prefill_f16.get();
  }

  // y[n][rows] = x[n][cols] W^T (+ bias). x16_ready: x already rounded to f16 by the kernel that
  // wrote x, for the cuBLAS GEMM (otherwise converted here).
  void linear(const DeviceLinear& l, const float* x, int n, float* y, int bits, const uint16_t* x16_ready = nullptr) {
    const float one = 1.f, zero = 0.f;
    const uint16_t* cached = l.quantized && n > kCachedTiledTokens ? prefill_weights(l, bits) : nullptr;
    if (l.quantized && n == 1) {
      bitplane_gemv(l.q, bits, x, y, stream_);
    } else if (l.quantized && !cached && n <= tiled_gemm_tokens(bits) && pair_lut_gemm(l.q, bits, x, n, y, stream_)) {
      // a short prompt: straight from the tiles, no f16 copy of the layer
    } else if (l.quantized && !cached && tile_gemm_on_ && pair_lut_gemm_tile(l.q, bits, x, n, y, x16_.get(), stream_)) {
      // a longer prompt at 2..3 bits: the GEMM tile, also without an f16 copy
    } else if (!l.quantized && l.f32) {
      PMPD_CUBLAS_CHECK(cublas().sgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(l.rows), n, int(l.cols), &one,
                                    reinterpret_cast<const float*>(l.dense.get()), int(l.cols), x, int(l.cols), &zero, y,
                                    int(l.rows)));
    } else {
      const uint16_t* w = reinterpret_cast<const uint16_t*>(l.dense.get());
      if (cached) {
        w = cached;
      } else if (l.quantized) {
        bitplane_dequant_f16(l.q, bits, wscratch_.get(), stream_);
        w = wscratch_.get();
      }
      const uint16_t* x16 = x16_ready;
      if (!x16) f32_to_f16(x, x16_.get(), int64_t(n) * l.cols, stream_), x16 = x16_.get();
      PMPD_CUBLAS_CHECK(cublas().gemm_ex(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(l.rows), n, int(l.cols), &one, w, CUDA_R_16F,
                                     int(l.cols), x16, CUDA_R_16F, int(l.cols), &zero, y, CUDA_R_32F, int(l.rows),
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    if (l.bias) add_bias(y, l.bias.get(), n, int(l.rows), stream_);
  }

  // Where a single-token layer's GEMV writes: y (added to where accumulate). fragments: also
  // the next GEMV's input (act(y), or act(gate) * up) there in the tensor-core GEMV's f16 order
  // (only where mlp_fragments() says both GEMVs take it). fold_norm: also the input of the next
  // GEMV, normed by that RMSNorm, as the norm_fragments_ and the sums of squares `fold_sums` (a
  // sumsq_slot; norm_folds).
  GemvOutput gemv_output(const DeviceLinear& l, float* y, bool accumulate, uint16_t* fragments = nullptr,
                         const DeviceNorm* fold_norm = nullptr, float* fold_sums = nullptr) const {
    GemvOutput o;
    o.y = y, o.accumulate = accumulate, o.bias = l.bias.get();
    if (fragments) {
      o.fragments = fragments, o.act = act_code();
      o.fragment_op = c_.gated_mlp ? GemvPrologue::GatedActivation : GemvPrologue::Activation;
    }
    if (fold_norm) {
      o.norm_w = fold_norm->fold_weights(), o.norm_fragments = norm_fragments_.get(), o.sumsq_partials = fold_sums;
    }
    o.slice_partials = slice_partials_.get(), o.slice_counts = slice_counts_.get(), o.slice_tasks = slice_tasks_;
    return o;
  }
  // A single-token layer: the bit-plane GEMV with the preceding operator fused into its
  // input and the residual add into its output; 16-bit layers run the same steps apart.
  void gemv(const DeviceLinear& l, const GemvInput& in, float* y, bool accumulate, int bits,
            uint16_t* fragments = nullptr, const DeviceNorm* fold_norm = nullptr, float* fold_sums = nullptr) {
    gemv(l, in, gemv_output(l, y, accumulate, fragments, fold_norm, fold_sums), bits);
  }
  void gemv(const DeviceLinear& l, const GemvInput& in, const GemvOutput& o, int bits) {
    if (l.quantized) {
      bitplane_gemv(l.q, bits, in, o, stream_);
      return;
    }
    const float* x = in.x;
    if (in.prologue != GemvPrologue::None) {
      apply_prologue(in, l.cols, pro_.get(), stream_);
      x = pro_.get();
    }
    float* dst = o.accumulate ? tmp_.get() : o.y;
    linear(l, x, 1, dst, bits);
    if (o.accumulate) add_inplace(o.y, dst, l.rows, stream_);
  }

  // Whether a decode step at `bits` has the gate|up GEMV write the down projection's input as
  // f16 fragments: both on the tensor-core GEMV, the gate|up tiles interleaved where gated.
  // Saves every down-projection block computing the activation of the whole input.
  bool mlp_fragments(const DeviceLayer& w, int bits) const {
    return w.gate_up.quantized && w.down.quantized && pair_lut_serves(w.gate_up.q, bits) &&
           pair_lut_serves(w.down.q, bits) && (!c_.gated_mlp || w.gate_up.q.tiles_interleave > 0) && fragments_on_;
  }

  // Whether a decode step at `bits` has the attention write the output projection's input
  // as f16 fragments (that GEMV on the tensor-core path): its blocks then copy x instead of
  // each converting it.
  bool o_fragments(const DeviceLayer& w, int bits) const {
    return w.o.quantized && pair_lut_serves(w.o.q, bits) && att_fragments_on_;
  }

  // Whether a decode step at `bits` folds the RMSNorm `nm` between `producer` (a residual add)
  // and `consumer` into the producer (GemvOutput::norm_fragments): both on the tensor-core GEMV.
  // Saves every block of the consumer reading x and reducing its norm after the wait
  // (PMPD_CUDA_NORM_FOLD=0 turns it off). The producer rounds norm_w * x to f16 before the
  // norm's scale, with norm_w divided by a power of two (DeviceNorm::fold_gain) so that every
  // |norm_w| <= 1: |norm_w * x| <= |x|, which fits f16 wherever the residual does (as in any
  // model run in f16).
  bool norm_folds(const DeviceLinear& producer, const DeviceLinear& consumer, const DeviceNorm& nm, int bits) const {
    return norm_fold_on_ && c_.norm == NormKind::RMSNorm && nm.foldable && producer.quantized &&
           consumer.quantized && pair_lut_serves(producer.q, bits) && pair_lut_serves(consumer.q, bits) &&
           consumer.cols == c_.dim;
  }
  // The norm before layer l's q|k|v (which 0) or gate|up (1); at l = n_layers the final norm,
  // before the LM head.
  const DeviceNorm& input_norm(int l, int which) const {
    if (l == c_.n_layers) return out_norm_;
    return which == 0 ? layers_[size_t(l)].attn_norm : layers_[size_t(l)].ffn_norm;
  }
  // Whether layer l's attention norm (l = n_layers: the final norm, the LM head reading its
  // input as fragments as the layers' q|k|v do) is folded into layer l - 1's down projection
  // at `bits`. Only the decode step's path without parallel blocks folds it.
  bool attn_norm_folds(int l, int bits) const {
    if (l <= 0 || l > c_.n_layers || c_.parallel_residual) return false;
    const DeviceLinear& consumer = l == c_.n_layers ? output_ : layers_[size_t(l)].qkv;
    return norm_folds(layers_[size_t(l - 1)].down, consumer, input_norm(l, 0), bits);
  }
  // The tasks' sums of squares of layer l's attention norm (which 0) or MLP norm (1); the
  // final norm's at l = n_layers, which 0.
  float* sumsq_slot(int l, int which) const {
    return norm_sumsq_.get() + size_t(2 * l + which) * (size_t(c_.dim + 15) / 16);
  }
  // The input of layer l's q|k|v (which 0) or gate|up (1), written folded by the GEMV before.
  // l = n_layers: the LM head's (the final norm).
  GemvInput folded_input(int l, int which) const {
    GemvInput in = fragment_input(norm_fragments_.get());
    in.sumsq_partials = sumsq_slot(l, which), in.eps = c_.norm_eps, in.norm_gain = input_norm(l, which).fold_gain;
    return in;
  }

  GemvInput norm_input(const DeviceNorm& nm, const float* x) const {
    GemvInput in;
    in.x = x;
    in.prologue = c_.norm == NormKind::RMSNorm ? GemvPrologue::RmsNorm : GemvPrologue::LayerNorm;
    in.norm_w = nm.w.get(), in.norm_b = nm.b.get(), in.eps = c_.norm_eps;
    return in;
  }
  static GemvInput plain_input(const float* x) {
    GemvInput in;
    in.x = x;
    return in;
  }
  // The kernels' activation code: 0 SiLU, 1 GELU-tanh.
  int act_code() const { return c_.act == Activation::SiLU ? 0 : 1; }
  static GemvInput fragment_input(const uint16_t* fragments) {
    GemvInput in;
    in.prologue = GemvPrologue::Fragments, in.fragments = fragments;
    return in;
  }

  // Records a timing event after the stage just enqueued (profile_step only).
  void mark(const char* stage) {
    if (!marks_) return;
    cudaEvent_t e;
    PMPD_CUDA_CHECK(cudaEventCreate(&e));
    // External: a real timing node in the captured graph, not only an ordering edge.
    PMPD_CUDA_CHECK(cudaEventRecordWithFlags(e, stream_, cudaEventRecordExternal));
    marks_->emplace_back(stage, e);
  }

  // The kernels of one pass on stream_; `greedy` ends it with the argmax of the last
  // token's logits into token_out_.
  void enqueue_pass(int n, int bits, bool all_logits, bool greedy = false) {
    const ModelConfig& c = c_;
    const int D = c.dim, F = c.hidden_dim, Q = c.n_heads * c.head_dim, KV = c.kv_dim();
    const int qkv_stride = Q + 2 * KV;
    const bool fused = n == 1;  // a decode step; the prompt pass runs GEMMs
    GemvInput act_in = plain_input(gu_.get());
    act_in.prologue = c.gated_mlp ? GemvPrologue::GatedActivation : GemvPrologue::Activation;
    act_in.act = act_code();
    mark("start");
    embed_rows_f16(embd_.get(), tokens_.get(), n, D, x_.get(), stream_);
    mark("embedding");
    // The prompt pass leaves a layer's residual adds (its MLP's; a parallel block's attention's
    // too) to the next norm's kernel; the norms write their f16 copy into x16_ for the GEMM next.
    const float* pending_add0 = nullptr;
    const float* pending_add1 = nullptr;
    uint16_t* norm16 = fused ? nullptr : x16_.get();
    for (int l = 0; l < c.n_layers; ++l) {
      DeviceLayer& w = layers_[size_t(l)];
      if (fused && !c.parallel_residual) {
        // The attention norm folded into the layer before's down projection, or done here.
        gemv(w.qkv, attn_norm_folds(l, bits) ? folded_input(l, 0) : norm_input(w.attn_norm, x_.get()), qkv_.get(), false,
             bits);
      } else {
        norm(w.attn_norm, x_.get(), h_.get(), n, pending_add0, pending_add1, norm16);
        if (fused) gemv(w.qkv, plain_input(h_.get()), qkv_.get(), false, bits);
        else linear(w.qkv, h_.get(), n, qkv_.get(), bits, norm16);
      }
      mark("norm + q/k/v projection");
      uint16_t* const* slots = slots_.get() + 2 * l;
      if (fused) {
        DecodeAttentionArgs a;
        a.qkv = qkv_.get(), a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.head_dim = c.head_dim;
        a.rotary_dim = c.rotary_dim, a.interleaved = c.rope_interleaved, a.inv_freq = inv_freq_.get();
        a.k_off = Q, a.v_off = Q + KV, a.kv_slots = slots, a.step = step_.get(), a.max_ctx = max_ctx_;
        a.splits = attn_splits_, a.partial = attn_partial_.get(), a.counters = attn_counters_.get(), a.out = att_.get();
        const bool o_frag = o_fragments(w, bits);
        a.fragments = o_frag ? att_fragments_.get() : nullptr;
        attention_decode(a, stream_);
        mark("RoPE + KV store + attention");
        // Parallel block (Phi): the MLP reads the same normed input, kept in h.
        const bool ffn_fold = !c.parallel_residual && norm_folds(w.o, w.gate_up, w.ffn_norm, bits);
        const bool frag = mlp_fragments(w, bits);
        const GemvInput o_in = o_frag ? fragment_input(att_fragments_.get()) : plain_input(att_.get());
        const GemvOutput o_out = gemv_output(w.o, x_.get(), true, nullptr, ffn_fold ? &w.ffn_norm : nullptr,
                                             ffn_fold ? sumsq_slot(l, 1) : nullptr);
        const GemvInput gu_in =
            c.parallel_residual ? plain_input(h_.get()) : ffn_fold ? folded_input(l, 1) : norm_input(w.ffn_norm, x_.get());
        const GemvOutput gu_out = gemv_output(w.gate_up, gu_.get(), false, frag ? mlp_fragments_.get() : nullptr);
        gemv(w.o, o_in, o_out, bits);
        mark("output projection + residual");
        gemv(w.gate_up, gu_in, gu_out, bits);
        mark("norm + gate/up projection");
        // The next norm (layer l + 1's attention norm, or the final one) folded in where it can be.
        const bool next_fold = attn_norm_folds(l + 1, bits);
        gemv(w.down, frag ? fragment_input(mlp_fragments_.get()) : act_in, x_.get(), true, bits, nullptr,
             next_fold ? &input_norm(l + 1, 0) : nullptr, next_fold ? sumsq_slot(l + 1, 0) : nullptr);
        mark("activation + down projection + residual");
        continue;
      }
      rope_and_store(qkv_.get(), n, qkv_stride, c.n_heads, c.n_kv_heads, c.head_dim, c.rotary_dim, c.rope_interleaved,
                     inv_freq_.get(), Q, Q + KV, slots, step_.get(), stream_);
      mark("RoPE + KV store");
      attention(qkv_.get(), n, qkv_stride, c.n_heads, c.n_kv_heads, c.head_dim, slots, max_ctx_, step_.get(), att_.get(),
                stream_);
      mark("attention");
      linear(w.o, att_.get(), n, o_.get(), bits);
      if (!c.parallel_residual) {
        norm(w.ffn_norm, x_.get(), h_.get(), n, o_.get(), nullptr, x16_.get());  // x += o, then the norm
        linear(w.gate_up, h_.get(), n, gu_.get(), bits, x16_.get());
      } else {
        linear(w.gate_up, h_.get(), n, gu_.get(), bits);  // h's f16 copy went with o's input
      }
      mlp_activation(gu_.get(), n, F, int(w.gate_up.rows), c.gated_mlp, act_code(), mid_.get(), stream_, x16_.get());
      linear(w.down, mid_.get(), n, mlp_.get(), bits, x16_.get());
      pending_add0 = c.parallel_residual ? o_.get() : mlp_.get();  // x = (x + o) + mlp, as the CPU adds them
      pending_add1 = c.parallel_residual ? mlp_.get() : nullptr;
    }
    const int first = all_logits ? 0 : n - 1, count = n - first;
    if (fused) {  // the final norm folded into the last down projection, or the head GEMV's prologue
      gemv(output_, attn_norm_folds(c.n_layers, bits) ? folded_input(c.n_layers, 0) : norm_input(out_norm_, x_.get()),
           logits_.get(), false, bits);
    } else {
      // The last layer's residual adds, for the rows the head reads (x is not read after the pass).
      const int64_t skip = int64_t(first) * D;
      norm(out_norm_, x_.get() + skip, h_.get(), count, pending_add0 ? pending_add0 + skip : nullptr,
           pending_add1 ? pending_add1 + skip : nullptr, x16_.get());
      linear(output_, h_.get(), count, logits_.get(), bits, x16_.get());
    }
    // A greedy pass also leaves its token and the next position where the next decode step
    // reads them (queue_step chains on that).
    if (greedy)
      argmax(logits_.get() + int64_t(count - 1) * c.vocab_size, c.vocab_size, token_out_.get(), stream_,
             NextStep{tokens_.get(), step_.get(), n});
    mark("final norm + LM head");
  }

  const Model& m_;
  const ModelConfig& c_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DevArray<uint8_t> workspace_;
  DevArray<uint16_t> embd_;
  std::vector<DeviceLayer> layers_;
  DeviceNorm out_norm_;
  DeviceLinear output_;
  DevArray<float> inv_freq_;
  int max_ctx_ = 0;
  // Activations, sized for `capacity_` tokens.
  int capacity_ = 0, logit_rows_ = 0;
  DevArray<float> x_, h_, o_, mlp_, qkv_, att_, gu_, mid_, logits_, pro_, tmp_;
  DevArray<uint16_t> x16_;
  // The down projection's input as f16 fragments, written by the gate|up GEMV (mlp_fragments).
  DevArray<uint16_t> mlp_fragments_;
  // The output projection's input as f16 fragments, written by the decode attention (o_fragments).
  DevArray<uint16_t> att_fragments_;
  // A folded RMSNorm's output (norm_folds): the next GEMV's input as f16 fragments of norm_w * x,
  // and per norm site (2 a layer: attention, MLP) the sums of x^2 of the producer's tasks.
  DevArray<uint16_t> norm_fragments_;
  DevArray<float> norm_sumsq_;
  // The streaming GEMV's column slices (matrices of more than 4096 columns): each task's slice
  // sums and the count of its slices in (zero between launches).
  DevArray<float> slice_partials_;
  DevArray<unsigned> slice_counts_;
  int64_t slice_tasks_ = 0;
  // For comparisons: PMPD_CUDA_MLP_FRAGMENTS=0, every down-projection block computes its input
  // itself; PMPD_CUDA_ATTN_FRAGMENTS=0, every output-projection block converts its input.
  static bool switched_on(const char* name) {
    const char* e = std::getenv(name);
    return !(e && std::string(e) == "0");
  }
  bool fragments_on_ = switched_on("PMPD_CUDA_MLP_FRAGMENTS");
  bool att_fragments_on_ = switched_on("PMPD_CUDA_ATTN_FRAGMENTS");
  bool norm_fold_on_ = switched_on("PMPD_CUDA_NORM_FOLD");
  // Prompt passes of up to tiled_gemm_tokens(bits) tokens multiply straight from the tiles
  // (pair_lut_gemm); longer ones dequantize each layer and call cuBLAS, which wins once the
  // GEMM is large: Vicuna-7B, prompt tokens/s tiled against dequantized (docs/cuda.md,
  // "Prompt processing"): 8 tokens 3 bits 1513 / 762, 8 bits 1012 / 618; 32 tokens 3 bits
  // 3305 / 2961, 4 bits 2994 / 2791, 5 bits 2086 / 2669; 64 tokens 3 bits 4526 / 5553.
  // PMPD_CUDA_TILED_GEMM_MAX sets one bound for every width (0: never).
  int tiled_gemm_max_ = [] {
    const char* e = std::getenv("PMPD_CUDA_TILED_GEMM_MAX");
    return e ? std::max(0, std::atoi(e)) : -1;
  }();
  // PMPD_CUDA_TILE_GEMM=1: longer prompts at 2..3 bits on the GEMM tile (pair_lut_gemm_tile)
  // instead of dequantize + cuBLAS.
  bool tile_gemm_on_ = [] {
    const char* e = std::getenv("PMPD_CUDA_TILE_GEMM");
    return e && std::atoi(e) != 0;
  }();
  int tiled_gemm_tokens(int bits) const {
    if (tiled_gemm_max_ >= 0) return tiled_gemm_max_;
    return bits <= 4 ? 32 : 8;
  }

  // The prefill cache (prefill_weights): on from set_prefill_cache or PMPD_CUDA_PREFILL_CACHE=1
  // when the model is created; prompts of more than kCachedTiledTokens tokens use it (cuBLAS on
  // the cached f16 rows beats the tiled GEMM from 16 tokens on: Vicuna-7B, 3 bits, 16 tokens
  // 3038 against 2305 tokens/s (stop 50); at 8 the tiled GEMM won against cuBLAS on f16 rows,
  // 1513 against 1383; docs/cuda.md, "Prompt processing").
  static constexpr int kCachedTiledTokens = 8;
  // Device memory the cache leaves free (for KV caches and other models): 2 GiB, or
  // PMPD_CUDA_PREFILL_CACHE_FREE_GIB.
  size_t prefill_cache_headroom_ = [] {
    const char* e = std::getenv("PMPD_CUDA_PREFILL_CACHE_FREE_GIB");
    return size_t(std::max(0.0, e ? std::atof(e) : 2.0) * double(size_t(1) << 30));
  }();
  bool prefill_cache_on_ = prefill_cache_default();
  bool prefill_cache_full_ = false;
  std::atomic<size_t> prefill_cache_bytes_{0};  // read by other threads (the server's /metrics)

  DevArray<uint16_t> wscratch_;
  DevArray<int> tokens_;
  DevArray<StepState> step_;
  DevArray<int> token_out_;  // the greedy token of forward_greedy (and forward_sampled's)
  DevArray<int> penalized_;  // forward_sampled: the tokens of the repetition penalty's window
  DevArray<unsigned long long> sample_mass_;  // forward_sampled: the kernel's scratch, a word a token
  DevArray<uint16_t*> slots_;
  // The decode attention's split results and per-head completion counters.
  int attn_splits_ = 1;
  DevArray<float> attn_partial_;
  DevArray<unsigned> attn_counters_;
  uint64_t bound_kv_ = 0;
  uint8_t* pinned_ = nullptr;
  bool use_graphs_ = true;
  // queue_step's steps: tickets in order, the ticket each slot holds, its copy's event; the
  // last greedy step, whose token and position the device holds for a chained step.
  int64_t next_ticket_ = 0, last_queued_ticket_ = -1;
  uint64_t last_queued_kv_ = 0;
  std::array<int64_t, kQueueSlots> queue_tickets_{};
  std::array<cudaEvent_t, kQueueSlots> queue_events_{};
  // One decode-step graph per width, per whether it ends with the greedy argmax, and per
  // the attention's split count (which grows with the context).
  using GraphKey = std::tuple<int, bool, int>;
  std::map<GraphKey, cudaGraphExec_t> graphs_;
  std::map<GraphKey, int> timeline_replays_;  // decode graph replays, for timeline_replay
  std::mutex mu_;
  std::vector<std::pair<std::string, cudaEvent_t>>* marks_ = nullptr;
};

}  // namespace

double copy_bandwidth_gbs() {
  PMPD_CHECK(device_count() > 0, "no CUDA device found");
  const size_t n = size_t(1) << 30;
  DevArray<uint8_t> a(n), b(n);
  PMPD_CUDA_CHECK(cudaMemset(a.get(), 1, n));
  cudaEvent_t e0, e1;
  PMPD_CUDA_CHECK(cudaEventCreate(&e0));
  PMPD_CUDA_CHECK(cudaEventCreate(&e1));
  PMPD_CUDA_CHECK(cudaMemcpy(b.get(), a.get(), n, cudaMemcpyDeviceToDevice));  // warm-up
  const int reps = 10;
  PMPD_CUDA_CHECK(cudaEventRecord(e0));
  for (int i = 0; i < reps; ++i) PMPD_CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a.get() : b.get(), i % 2 ? b.get() : a.get(), n, cudaMemcpyDeviceToDevice));
  PMPD_CUDA_CHECK(cudaEventRecord(e1));
  PMPD_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  PMPD_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  return 2.0 * double(n) * reps / (double(ms) * 1e-3) / 1e9;
}

void set_prefill_cache(bool on) { prefill_cache_setting = on ? 1 : 0; }

std::unique_ptr<DeviceModel> DeviceModel::create(const Model& m) { return std::make_unique<CudaModel>(m); }

}  // namespace pmpd::cuda
