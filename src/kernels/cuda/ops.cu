// The small operators of a transformer layer on the device: embeddings, norms, RoPE with
// the f16 KV-cache store, causal attention, MLP activations. Each mirrors its CPU twin in
// kernels/cpu/ops.cpp (same formulas, f32 arithmetic); only summation order differs.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kThreads = 256;
using dev::activation;
using dev::block_max;
using dev::block_sum;
using dev::warp_sum;

__global__ void embed_kernel(const __half* table, const int* tokens, int dim, float* out) {
  dev::chained_start();
  const int t = blockIdx.y;
  const int64_t row = tokens[t];
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
    out[int64_t(t) * dim + i] = __half2float(table[row * dim + i]);
}

__global__ void rmsnorm_kernel(const float* x, const float* w, float* out, int dim, float eps) {
  dev::chained_start();
  const float* xi = x + int64_t(blockIdx.x) * dim;
  float* oi = out + int64_t(blockIdx.x) * dim;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xi[i] * xi[i];
  ss = block_sum(ss);
  const float scale = rsqrtf(ss / float(dim) + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) oi[i] = w[i] * (xi[i] * scale);
}

__global__ void layernorm_kernel(const float* x, const float* w, const float* b, float* out, int dim, float eps) {
  dev::chained_start();
  const float* xi = x + int64_t(blockIdx.x) * dim;
  float* oi = out + int64_t(blockIdx.x) * dim;
  float s = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xi[i];
  const float mean = block_sum(s) / float(dim);
  float v = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) v += (xi[i] - mean) * (xi[i] - mean);
  const float inv = rsqrtf(block_sum(v) / float(dim) + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x)
    oi[i] = (xi[i] - mean) * inv * (w ? w[i] : 1.f) + (b ? b[i] : 0.f);
}

__global__ void to_f16_kernel(const float* x, __half* out, int64_t count) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] = __float2half_rn(x[i]);
}

__global__ void add_kernel(float* x, const float* y, int64_t count) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) x[i] += y[i];
}

__global__ void bias_kernel(float* x, const float* bias, int n, int cols) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < int64_t(n) * cols) x[i] += bias[i % cols];
}

__global__ void activation_kernel(const float* in, int n, int F, int stride, bool gated, int act, float* out) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(n) * F) return;
  const int64_t t = i / F, c = i % F;
  const float a = activation(in[t * stride + c], act);
  out[i] = gated ? a * in[t * stride + F + c] : a;
}

// Rotates one head `v` (rotary_dim of its entries; in global or shared memory) to position
// `pos`, the block's threads sharing the pairs.
__device__ void rotate_head(float* v, int pos, int rotary_dim, bool interleaved, const float* inv_freq) {
  const int half = rotary_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = float(pos) * inv_freq[i];
    const float c = cosf(angle), s = sinf(angle);
    const int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x1 * c + x0 * s;
  }
}

// One block per (token, head): q and k heads rotate, k and v heads go to the f16 caches.
__global__ void rope_store_kernel(float* qkv, int stride, int n_heads, int n_kv_heads, int head_dim, int rotary_dim,
                                  bool interleaved, const float* inv_freq, int k_off, int v_off,
                                  uint16_t* const* kv_slots, const StepState* step) {
  dev::chained_start();
  const int t = blockIdx.x, h = blockIdx.y;
  const int pos = step->pos0 + t;
  float* row = qkv + int64_t(t) * stride;
  const int kv_dim = n_kv_heads * head_dim;
  if (h < n_heads + n_kv_heads) {
    float* v = h < n_heads ? row + h * head_dim : row + k_off + (h - n_heads) * head_dim;
    rotate_head(v, pos, rotary_dim, interleaved, inv_freq);
    if (h < n_heads) return;
    __syncthreads();
    __half* k_cache = reinterpret_cast<__half*>(kv_slots[0]) + int64_t(pos) * kv_dim + (h - n_heads) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) k_cache[d] = __float2half_rn(v[d]);
  } else {
    const int vh = h - n_heads - n_kv_heads;
    __half* v_cache = reinterpret_cast<__half*>(kv_slots[1]) + int64_t(pos) * kv_dim + vh * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) v_cache[d] = __float2half_rn(row[v_off + vh * head_dim + d]);
  }
}

constexpr int kAttnThreads = 256;
constexpr int kMaxHeadDim = 256;

// One block per (head, token). Scores: a thread per position, its dot product over the
// head in half2 loads (independent positions keep many loads in flight; no shuffles).
// Values: the block splits into kAttnThreads / head_dim groups, each thread one dimension
// of every group-th position; the groups' partial sums are added at the end.
__global__ void attention_kernel(const float* q, int q_stride, int n_heads, int n_kv_heads, int head_dim,
                                 uint16_t* const* kv_slots, const StepState* step, float* out) {
  dev::chained_start();
  const __half* k_cache = reinterpret_cast<const __half*>(kv_slots[0]);
  const __half* v_cache = reinterpret_cast<const __half*>(kv_slots[1]);
  extern __shared__ float smem[];
  float* qh = smem;                       // head_dim
  float* part = smem + head_dim;          // kAttnThreads
  float* scores = part + kAttnThreads;    // len
  const int h = blockIdx.x, t = blockIdx.y;
  const int len = step->pos0 + t + 1;
  const int kvh = h / (n_heads / n_kv_heads);
  const int kv_dim = n_kv_heads * head_dim;
  const float scale = rsqrtf(float(head_dim));
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) qh[d] = q[int64_t(t) * q_stride + h * head_dim + d];
  __syncthreads();
  for (int p = threadIdx.x; p < len; p += blockDim.x) {
    const __half* k = k_cache + int64_t(p) * kv_dim + kvh * head_dim;
    float s = 0.f;
    if (head_dim % 2 == 0) {
      const __half2* k2 = reinterpret_cast<const __half2*>(k);
#pragma unroll 8
      for (int i = 0; i < head_dim / 2; ++i) {
        const float2 kf = __half22float2(k2[i]);
        s += kf.x * qh[2 * i] + kf.y * qh[2 * i + 1];
      }
    } else {
      for (int d = 0; d < head_dim; ++d) s += __half2float(k[d]) * qh[d];
    }
    scores[p] = s * scale;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int p = threadIdx.x; p < len; p += blockDim.x) m = fmaxf(m, scores[p]);
  m = block_max(m);
  float sum = 0.f;
  for (int p = threadIdx.x; p < len; p += blockDim.x) {
    const float e = expf(scores[p] - m);
    scores[p] = e;
    sum += e;
  }
  sum = block_sum(sum);  // its barrier also publishes the exponentials
  const int groups = kAttnThreads / head_dim, g = threadIdx.x / head_dim, d = threadIdx.x % head_dim;
  if (g < groups) {
    const __half* v = v_cache + kvh * head_dim + d;
    float o = 0.f;
#pragma unroll 4
    for (int p = g; p < len; p += groups) o += scores[p] * __half2float(v[int64_t(p) * kv_dim]);
    part[g * head_dim + d] = o;
  }
  __syncthreads();
  const float inv = 1.f / sum;
  for (int dd = threadIdx.x; dd < head_dim; dd += blockDim.x) {
    float a = 0.f;
    for (int gg = 0; gg < groups; ++gg) a += part[gg * head_dim + dd];
    out[(int64_t(t) * n_heads + h) * head_dim + dd] = a * inv;
  }
}

constexpr int kDecodeThreads = 128;

// 8 halves (one 16-byte load) as floats.
__device__ __forceinline__ void unpack8(uint4 w, float (&f)[8]) {
  const __half2* h2 = reinterpret_cast<const __half2*>(&w);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 v = __half22float2(h2[j]);
    f[2 * j] = v.x, f[2 * j + 1] = v.y;
  }
}

// q . k for a cached key row (f16), a half at a time (heads not a multiple of 8).
__device__ __forceinline__ float dot_cached(const float* qh, const __half* k, int head_dim) {
  float s = 0.f;
  for (int d = 0; d < head_dim; ++d) s += __half2float(k[d]) * qh[d];
  return s;
}

// The decode step's attention of one layer, RoPE and the KV store included, split along
// the context (flash-decoding): block (h, s) rotates head h's query (and, where its range
// holds the new position, the new key), scores positions [p0, p1) of the cache, and leaves
// (max, sum of exponentials, unnormalised output) in `partial`; the last block of a head
// to finish merges the splits. The new key and value enter rounded to f16, as stored.
__global__ void attention_decode_kernel(DecodeAttentionArgs a) {
  extern __shared__ float smem[];
  const int hd = a.head_dim, G = max(1, int(blockDim.x) / hd);  // value groups
  float* qh = smem;
  float* kn = qh + hd;
  float* vn = kn + hd;
  float* part = vn + hd;                                // partial outputs, 8 floats a thread
  float* scores = part + max(8 * int(blockDim.x), hd);  // the split's positions
  __shared__ bool is_last;
  const int h = blockIdx.x, s = blockIdx.y, tid = threadIdx.x;
  const int group = a.n_heads / a.n_kv_heads, kvh = h / group, kv_dim = a.n_kv_heads * hd;
  dev::let_next_start();
  // The step state (copied before the step) and the cache rows before the new position
  // (written by earlier steps) need nothing from the kernel before this one: the split's
  // first rows are loaded before waiting on it.
  const int pos = a.step->pos0, len = pos + 1;
  const int chunk = (len + a.splits - 1) / a.splits, p0 = s * chunk, p1 = min(len, p0 + chunk);
  const bool has_new = p0 <= pos && pos < p1;
  const __half* k_cache = reinterpret_cast<const __half*>(a.kv_slots[0]);
  const __half* v_cache = reinterpret_cast<const __half*>(a.kv_slots[1]);
  // Heads of a multiple of 8 go by teams of T threads a position, one 16-byte load of 8
  // halves each (coalesced rows, `teams` positions at once); others a thread a position.
  const bool vec = hd % 8 == 0;
  int T = 1;
  while (vec && T < hd / 8) T <<= 1;
  const int teams = int(blockDim.x) / T, team = tid / T, d0 = 8 * (tid % T);
  const bool active = vec && d0 < hd;
  // Online softmax per team: U positions' keys and values are loaded before any is used,
  // so a team keeps 2U row loads in flight instead of waiting on each.
  constexpr int U = 4;
  uint4 kr[U], vr[U];
  auto load_batch = [&](int pb) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int p = pb + u * teams + team;
      kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      if (active && p < p1 && p != pos) {
        const int64_t off = int64_t(p) * kv_dim + kvh * hd + d0;
        kr[u] = *reinterpret_cast<const uint4*>(k_cache + off);
        vr[u] = *reinterpret_cast<const uint4*>(v_cache + off);
      }
    }
  };
  if (vec) load_batch(p0);
  dev::wait_for_producer();  // q, k, v of this token come from the projection before
  for (int d = tid; d < hd; d += blockDim.x) {
    qh[d] = a.qkv[h * hd + d];
    if (has_new) kn[d] = a.qkv[a.k_off + kvh * hd + d], vn[d] = a.qkv[a.v_off + kvh * hd + d];
  }
  __syncthreads();
  rotate_head(qh, pos, a.rotary_dim, a.interleaved, a.inv_freq);
  if (has_new) rotate_head(kn, pos, a.rotary_dim, a.interleaved, a.inv_freq);
  __syncthreads();
  if (has_new) {
    for (int d = tid; d < hd; d += blockDim.x) {
      const __half k16 = __float2half_rn(kn[d]), v16 = __float2half_rn(vn[d]);
      kn[d] = __half2float(k16), vn[d] = __half2float(v16);
      if (h % group == 0) {  // one head of the group stores its kv head
        reinterpret_cast<__half*>(a.kv_slots[0])[int64_t(pos) * kv_dim + kvh * hd + d] = k16;
        reinterpret_cast<__half*>(a.kv_slots[1])[int64_t(pos) * kv_dim + kvh * hd + d] = v16;
      }
    }
    __syncthreads();
  }
  const float scale = rsqrtf(float(hd));
  float m = -INFINITY, l = 0.f;  // the block's softmax max and sum
  int rows = G;                  // the output is the sum of rows part[0 .. rows)
  if (vec) {
    float qr[8], acc[8] = {}, tm = -INFINITY, tl = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) qr[j] = active ? qh[d0 + j] : 0.f;
    for (int pb = p0; pb < p1; pb += teams * U) {  // the same trips for every thread: the shuffles need all
      if (pb != p0) load_batch(pb);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int p = pb + u * teams + team;
        float k[8], v[8], sc = 0.f;
        unpack8(kr[u], k), unpack8(vr[u], v);
        if (active && p == pos)
#pragma unroll
          for (int j = 0; j < 8; ++j) k[j] = kn[d0 + j], v[j] = vn[d0 + j];
#pragma unroll
        for (int j = 0; j < 8; ++j) sc += k[j] * qr[j];
        for (int o = T / 2; o > 0; o >>= 1) sc += __shfl_xor_sync(0xffffffffu, sc, o);
        if (p < p1) {
          sc *= scale;
          const float mn = fmaxf(tm, sc), corr = expf(tm - mn), e = expf(sc - mn);
          tl = tl * corr + e;
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[j] = acc[j] * corr + e * v[j];
          tm = mn;
        }
      }
    }
    // The teams onto the block's max (every lane of a team holds its team's tm and tl).
    m = block_max(tm);
    const float w = tl > 0.f ? expf(tm - m) : 0.f;
    l = block_sum(tid % T == 0 ? tl * w : 0.f);
    rows = teams;
    if (active)
#pragma unroll
      for (int j = 0; j < 8; ++j) part[team * hd + d0 + j] = acc[j] * w;
  } else {
    for (int p = p0 + tid; p < p1; p += blockDim.x) {
      float sc = 0.f;
      if (p == pos)
        for (int d = 0; d < hd; ++d) sc += kn[d] * qh[d];
      else
        sc = dot_cached(qh, k_cache + int64_t(p) * kv_dim + kvh * hd, hd);
      sc *= scale;
      scores[p - p0] = sc;
      m = fmaxf(m, sc);
    }
    m = block_max(m);
    for (int p = p0 + tid; p < p1; p += blockDim.x) {
      const float e = expf(scores[p - p0] - m);
      scores[p - p0] = e;
      l += e;
    }
    l = block_sum(l);  // its barrier also publishes the exponentials
    for (int i = tid; i < G * hd; i += blockDim.x) {
      const int g = i / hd, d = i % hd;
      float o = 0.f;
#pragma unroll 4
      for (int p = p0 + g; p < p1; p += G)
        o += scores[p - p0] * (p == pos ? vn[d] : __half2float(v_cache[int64_t(p) * kv_dim + kvh * hd + d]));
      part[i] = o;
    }
  }
  __syncthreads();
  float* out = a.out + h * hd;
  if (a.splits == 1) {
    for (int d = tid; d < hd; d += blockDim.x) {
      float o = 0.f;
      for (int g = 0; g < rows; ++g) o += part[g * hd + d];
      out[d] = o / l;
    }
    return;
  }
  float* mine = a.partial + (int64_t(h) * a.splits + s) * (hd + 2);
  for (int d = tid; d < hd; d += blockDim.x) {
    float o = 0.f;
    for (int g = 0; g < rows; ++g) o += part[g * hd + d];
    mine[d] = o;
  }
  if (tid == 0) mine[hd] = m, mine[hd + 1] = l;
  __threadfence();  // this split's result is visible before it is counted
  __syncthreads();
  if (tid == 0) is_last = atomicAdd(&a.counters[h], 1u) == unsigned(a.splits - 1);
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const float* all = a.partial + int64_t(h) * a.splits * (hd + 2);
  float M = -INFINITY, L = 0.f;
  for (int j = 0; j < a.splits; ++j)
    if (__ldcg(all + j * (hd + 2) + hd + 1) > 0.f) M = fmaxf(M, __ldcg(all + j * (hd + 2) + hd));
  for (int j = 0; j < a.splits; ++j) {
    const float lj = __ldcg(all + j * (hd + 2) + hd + 1);
    if (lj > 0.f) L += lj * expf(__ldcg(all + j * (hd + 2) + hd) - M);
  }
  for (int d = tid; d < hd; d += blockDim.x) {
    float o = 0.f;
    for (int j = 0; j < a.splits; ++j) {
      const float lj = __ldcg(all + j * (hd + 2) + hd + 1);
      if (lj > 0.f) o += __ldcg(all + j * (hd + 2) + d) * expf(__ldcg(all + j * (hd + 2) + hd) - M);
    }
    out[d] = o / L;
  }
  if (tid == 0) a.counters[h] = 0;  // ready for the next step (graphs replay this kernel)
}

unsigned blocks_for(int64_t n, int threads = kThreads) { return unsigned((n + threads - 1) / threads); }

}  // namespace

void embed_rows_f16(const uint16_t* table, const int* tokens, int n, int dim, float* out, void* stream) {
  dim3 grid{unsigned((dim + kThreads - 1) / kThreads), unsigned(n)};
  launch_chained(embed_kernel, grid, dim3(kThreads), 0, static_cast<cudaStream_t>(stream),
                 reinterpret_cast<const __half*>(table), tokens, dim, out);
}

void rmsnorm(const float* x, const float* w, float* out, int n, int dim, float eps, void* stream) {
  launch_chained(rmsnorm_kernel, dim3(unsigned(n)), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), x, w, out,
                 dim, eps);
}

void layernorm(const float* x, const float* w, const float* b, float* out, int n, int dim, float eps, void* stream) {
  launch_chained(layernorm_kernel, dim3(unsigned(n)), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), x, w, b,
                 out, dim, eps);
}

void f32_to_f16(const float* x, uint16_t* out, int64_t count, void* stream) {
  launch_chained(to_f16_kernel, dim3(blocks_for(count)), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), x,
                 reinterpret_cast<__half*>(out), count);
}

void add_inplace(float* x, const float* y, int64_t count, void* stream) {
  launch_chained(add_kernel, dim3(blocks_for(count)), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), x, y,
                 count);
}

void add_bias(float* x, const float* bias, int n, int cols, void* stream) {
  launch_chained(bias_kernel, dim3(blocks_for(int64_t(n) * cols)), dim3(kThreads), 0,
                 static_cast<cudaStream_t>(stream), x, bias, n, cols);
}

void mlp_activation(const float* in, int n, int F, int stride, bool gated, int act, float* out, void* stream) {
  launch_chained(activation_kernel, dim3(blocks_for(int64_t(n) * F)), dim3(kThreads), 0,
                 static_cast<cudaStream_t>(stream), in, n, F, stride, gated, act, out);
}

void rope_and_store(float* qkv, int n, int stride, int n_heads, int n_kv_heads, int head_dim, int rotary_dim,
                    bool interleaved, const float* inv_freq, int k_off, int v_off, uint16_t* const* kv_slots,
                    const StepState* step, void* stream) {
  dim3 grid{unsigned(n), unsigned(n_heads + 2 * n_kv_heads)};
  launch_chained(rope_store_kernel, grid, dim3(64), 0, static_cast<cudaStream_t>(stream), qkv, stride, n_heads,
                 n_kv_heads, head_dim, rotary_dim, interleaved, inv_freq, k_off, v_off, kv_slots, step);
}

size_t attention_smem_bytes(int head_dim, int max_ctx) {
  return sizeof(float) * size_t(head_dim + kAttnThreads + max_ctx);  // q, the groups' partial sums, scores
}

void attention(const float* q, int n, int q_stride, int n_heads, int n_kv_heads, int head_dim,
               uint16_t* const* kv_slots, int max_ctx, const StepState* step, float* out, void* stream) {
  PMPD_CUDA_REQUIRE(head_dim <= kMaxHeadDim, "attention: head dimension above 256");
  const size_t smem = attention_smem_bytes(head_dim, max_ctx);
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    PMPD_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    raised = smem;
  }
  dim3 grid{unsigned(n_heads), unsigned(n)};
  launch_chained(attention_kernel, grid, dim3(kAttnThreads), smem, static_cast<cudaStream_t>(stream), q, q_stride,
                 n_heads, n_kv_heads, head_dim, kv_slots, step, out);
}

int attention_decode_splits(int n_heads, int max_ctx) {
  if (const char* e = std::getenv("PMPD_CUDA_ATTN_SPLITS")) return std::clamp(std::atoi(e), 1, 64);
  // About two blocks per SM, at least 32 positions a split at the full context.
  const int want = (2 * multiprocessor_count() + n_heads - 1) / n_heads;
  return std::clamp(std::min(want, max_ctx / 32), 1, 16);
}

size_t attention_decode_partial_floats(int n_heads, int head_dim, int splits) {
  return size_t(n_heads) * size_t(splits) * size_t(head_dim + 2);
}

void attention_decode(const DecodeAttentionArgs& a, void* stream) {
  PMPD_CUDA_REQUIRE(a.head_dim <= kMaxHeadDim && a.splits >= 1, "decode attention: bad head size or split count");
  const int chunk = (a.max_ctx + a.splits - 1) / a.splits;
  const size_t smem = sizeof(float) * size_t(3 * a.head_dim + std::max(8 * kDecodeThreads, a.head_dim) + chunk);
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    PMPD_CUDA_CHECK(cudaFuncSetAttribute(attention_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    raised = smem;
  }
  launch_chained(attention_decode_kernel, dim3(unsigned(a.n_heads), unsigned(a.splits)), dim3(kDecodeThreads), smem,
                 static_cast<cudaStream_t>(stream), a);
}

}  // namespace pmpd::cuda
