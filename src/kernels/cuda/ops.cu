// The small operators of a transformer layer on the device: embeddings, norms, RoPE with
// the f16 KV-cache store of the prompt pass, MLP activations (the attention is in
// attention_prefill.cu and attention_decode.cu). Each mirrors its CPU twin in
// kernels/cpu/ops.cpp (same formulas, f32 arithmetic); only summation order differs.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kThreads = 256;
using dev::activation;
using dev::block_sum;
using dev::warp_sum;

// Four floats rounded to f16 into dst[0..3] (4-byte aligned), as two half2 stores.
__device__ __forceinline__ void store_f16x4(__half* dst, float4 v) {
  __half2* h = reinterpret_cast<__half2*>(dst);
  h[0] = __floats2half2_rn(v.x, v.y), h[1] = __floats2half2_rn(v.z, v.w);
}

__global__ void embed_kernel(const __half* table, const int* tokens, int dim, float* out) {
  dev::chained_start();
  const int t = blockIdx.y;
  const int64_t row = tokens[t];
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
    out[int64_t(t) * dim + i] = __half2float(table[row * dim + i]);
}

// The prompt pass's norms (one block a token row): first the residual adds that precede the
// norm, x += add0 (+= add1), written back (fused here: one read of x fewer than an add kernel
// before); then out = the norm of x in f32 and, where out16 is given, the same values rounded
// to f16 for the cuBLAS GEMM that reads them (no conversion kernel of its own). Four floats a
// load where the row allows, the loop unrolled, so that a thread's loads are in flight at once
// (one load at a time made a 128-token pass's norm ~15 us, latency-bound).
template <bool kRms>
__global__ void norm_kernel(float* x, const float* add0, const float* add1, const float* w, const float* b,
                            float* out, __half* out16, int dim, float eps) {
  dev::chained_start();
  const int64_t base = int64_t(blockIdx.x) * dim;
  float* xi = x + base;
  float* oi = out + base;
  const bool quads = dim % 4 == 0;
  const int n4 = quads ? dim / 4 : 0;
  float4* x4 = reinterpret_cast<float4*>(xi);
  // Pass 1: the adds, and the sum (RMSNorm: of squares; LayerNorm: of values).
  float s = 0.f;
#pragma unroll 4
  for (int q = threadIdx.x; q < n4; q += blockDim.x) {
    float4 v = x4[q];
    if (add0) {
      const float4 a = reinterpret_cast<const float4*>(add0 + base)[q];
      v.x += a.x, v.y += a.y, v.z += a.z, v.w += a.w;
      if (add1) {
        const float4 c = reinterpret_cast<const float4*>(add1 + base)[q];
        v.x += c.x, v.y += c.y, v.z += c.z, v.w += c.w;
      }
      x4[q] = v;
    }
    s += kRms ? v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w : v.x + v.y + v.z + v.w;
  }
  for (int i = 4 * n4 + threadIdx.x; i < dim; i += blockDim.x) {
    float v = xi[i];
    if (add0) {
      v += add0[base + i];
      if (add1) v += add1[base + i];
      xi[i] = v;
    }
    s += kRms ? v * v : v;
  }
  float mean = 0.f, scale;
  if constexpr (kRms) {
    scale = rsqrtf(block_sum(s) / float(dim) + eps);
  } else {
    mean = block_sum(s) / float(dim);
    float var = 0.f;
#pragma unroll 4
    for (int q = threadIdx.x; q < n4; q += blockDim.x) {
      const float4 v = x4[q];
      var += (v.x - mean) * (v.x - mean) + (v.y - mean) * (v.y - mean) + (v.z - mean) * (v.z - mean) +
             (v.w - mean) * (v.w - mean);
    }
    for (int i = 4 * n4 + threadIdx.x; i < dim; i += blockDim.x) var += (xi[i] - mean) * (xi[i] - mean);
    scale = rsqrtf(block_sum(var) / float(dim) + eps);
  }
  // Pass 2: the normed row, as the CPU computes it (w * (x * scale); LayerNorm (x - mean) * inv * w + b).
  auto normed = [&](float v, int i) {
    return kRms ? w[i] * (v * scale) : (v - mean) * scale * (w ? w[i] : 1.f) + (b ? b[i] : 0.f);
  };
#pragma unroll 4
  for (int q = threadIdx.x; q < n4; q += blockDim.x) {
    const float4 v = x4[q];
    const float4 o =
        make_float4(normed(v.x, 4 * q), normed(v.y, 4 * q + 1), normed(v.z, 4 * q + 2), normed(v.w, 4 * q + 3));
    reinterpret_cast<float4*>(oi)[q] = o;
    if (out16) {
      store_f16x4(out16 + base + 4 * q, o);
    }
  }
  for (int i = 4 * n4 + threadIdx.x; i < dim; i += blockDim.x) {
    oi[i] = normed(xi[i], i);
    if (out16) out16[base + i] = __float2half_rn(oi[i]);
  }
}

// The greedy token on the device: the index of the largest of n logits, the first one
// among equals (as std::max_element picks on the host), so that a decode step brings
// back 4 bytes instead of the vocabulary's logits. One block; each thread scans a strided
// share as float4 where the row allows.
__global__ void argmax_kernel(const float* x, int n, int* out, int* next_token, StepState* step, int advance) {
  dev::chained_start();
  dev::FirstMax m(n);  // all -inf or NaN rows give token 0 below
  const bool vec = (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  const int quads = vec ? n / 4 : 0;
  for (int q = threadIdx.x; q < quads; q += blockDim.x) {
    const float4 v = reinterpret_cast<const float4*>(x)[q];
    m.take(v.x, 4 * q), m.take(v.y, 4 * q + 1), m.take(v.z, 4 * q + 2), m.take(v.w, 4 * q + 3);
  }
  for (int i = 4 * quads + threadIdx.x; i < n; i += blockDim.x) m.take(x[i], i);
  m.take_block();
  if (threadIdx.x == 0) {
    const int token = m.at < n ? m.at : 0;
    *out = token;
    if (next_token) *next_token = token, step->pos0 += advance;  // the next step's input, on the device
  }
}

// The element-wise kernels take four elements a thread where the count allows (float4 loads).
__global__ void to_f16_kernel(const float* x, __half* out, int64_t count) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (count % 4 == 0) {
    if (4 * i >= count) return;
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    store_f16x4(out + 4 * i, v);
  } else if (i < count) {
    out[i] = __float2half_rn(x[i]);
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t count) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (count % 4 == 0) {
    if (4 * i >= count) return;
    float4 v = reinterpret_cast<float4*>(x)[i];
    const float4 a = reinterpret_cast<const float4*>(y)[i];
    v.x += a.x, v.y += a.y, v.z += a.z, v.w += a.w;
    reinterpret_cast<float4*>(x)[i] = v;
  } else if (i < count) {
    x[i] += y[i];
  }
}

__global__ void bias_kernel(float* x, const float* bias, int n, int cols) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < int64_t(n) * cols) x[i] += bias[i % cols];
}

// out (and out16, rounded, where given: the down projection's cuBLAS input) = act(gate) * up.
// Four columns a thread where F and the row stride allow.
__global__ void activation_kernel(const float* in, int n, int F, int stride, bool gated, int act, float* out,
                                  __half* out16) {
  dev::chained_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (F % 4 == 0 && stride % 4 == 0) {
    const int64_t first = 4 * i;
    if (first >= int64_t(n) * F) return;
    const int64_t t = first / F, c = first % F;
    const float4 g = *reinterpret_cast<const float4*>(in + t * stride + c);
    float4 o = make_float4(activation(g.x, act), activation(g.y, act), activation(g.z, act), activation(g.w, act));
    if (gated) {
      const float4 u = *reinterpret_cast<const float4*>(in + t * stride + F + c);
      o.x *= u.x, o.y *= u.y, o.z *= u.z, o.w *= u.w;
    }
    reinterpret_cast<float4*>(out)[i] = o;
    if (out16) {
      store_f16x4(out16 + 4 * i, o);
    }
    return;
  }
  if (i >= int64_t(n) * F) return;
  const int64_t t = i / F, c = i % F;
  const float a = activation(in[t * stride + c], act);
  out[i] = gated ? a * in[t * stride + F + c] : a;
  if (out16) out16[i] = __float2half_rn(out[i]);
}

// One block a token: its rotation's cosines and sines once into shared memory, then every q
// and k head's pairs rotated, then k and v into the f16 caches, two entries a thread. (One
// block a (token, head) of 64 threads, each computing its pair's cosine and sine, took 228 us
// a layer at 1920 tokens on Vicuna-7B, mostly blocks starting and ending.)
__global__ void rope_store_kernel(float* qkv, int stride, int n_heads, int n_kv_heads, int head_dim, int rotary_dim,
                                  bool interleaved, const float* inv_freq, int k_off, int v_off,
                                  uint16_t* const* kv_slots, const StepState* step) {
  __shared__ float cos_at[kMaxHeadDim / 2], sin_at[kMaxHeadDim / 2];
  dev::chained_start();
  const int t = blockIdx.x, pos = step->pos0 + t, half = rotary_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = float(pos) * inv_freq[i];
    cos_at[i] = cosf(angle), sin_at[i] = sinf(angle);
  }
  __syncthreads();
  float* row = qkv + int64_t(t) * stride;
  const int heads = n_heads + n_kv_heads;  // q heads, then k heads
  for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
    const int hh = p / half, i = p % half;
    float* v = row + (hh < n_heads ? hh * head_dim : k_off + (hh - n_heads) * head_dim);
    const float c = cos_at[i], s = sin_at[i];
    const int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x1 * c + x0 * s;
  }
  __syncthreads();  // the rotated k is in (global memory, this block's writes)
  const int kv_dim = n_kv_heads * head_dim;
  __half* k_cache = reinterpret_cast<__half*>(kv_slots[0]) + int64_t(pos) * kv_dim;
  __half* v_cache = reinterpret_cast<__half*>(kv_slots[1]) + int64_t(pos) * kv_dim;
  if (kv_dim % 2 == 0 && k_off % 2 == 0 && v_off % 2 == 0 && stride % 2 == 0) {
    for (int e = 2 * threadIdx.x; e < kv_dim; e += 2 * blockDim.x) {
      const float2 k = *reinterpret_cast<const float2*>(row + k_off + e);
      const float2 v = *reinterpret_cast<const float2*>(row + v_off + e);
      *reinterpret_cast<__half2*>(k_cache + e) = __floats2half2_rn(k.x, k.y);
      *reinterpret_cast<__half2*>(v_cache + e) = __floats2half2_rn(v.x, v.y);
    }
  } else {
    for (int e = threadIdx.x; e < kv_dim; e += blockDim.x)
      k_cache[e] = __float2half_rn(row[k_off + e]), v_cache[e] = __float2half_rn(row[v_off + e]);
  }
}

unsigned blocks_for(int64_t n, int threads = kThreads) { return unsigned((n + threads - 1) / threads); }
// Blocks for an element-wise kernel over `count` floats: a thread takes four where `quads`
// (the kernel's float4 path), else one.
unsigned blocks_for_elements(int64_t count, bool quads) { return blocks_for(quads ? count / 4 : count); }

}  // namespace

void embed_rows_f16(const uint16_t* table, const int* tokens, int n, int dim, float* out, void* stream) {
  dim3 grid{unsigned((dim + kThreads - 1) / kThreads), unsigned(n)};
  launch_chained(embed_kernel, grid, dim3(kThreads), 0, static_cast<cudaStream_t>(stream),
                 reinterpret_cast<const __half*>(table), tokens, dim, out);
}

void norm_rows(bool rms, float* x, const float* add0, const float* add1, const float* w, const float* b, float* out,
               uint16_t* out16, int n, int dim, float eps, void* stream) {
  const auto kernel = rms ? norm_kernel<true> : norm_kernel<false>;
  launch_chained(kernel, dim3(unsigned(n)), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), x, add0, add1, w, b,
                 out, reinterpret_cast<__half*>(out16), dim, eps);
}

void argmax(const float* x, int n, int* out, void* stream, const NextStep& next) {
  launch_chained(argmax_kernel, dim3(1), dim3(1024), 0, static_cast<cudaStream_t>(stream), x, n, out, next.token,
                 next.step, next.advance);
}

void f32_to_f16(const float* x, uint16_t* out, int64_t count, void* stream) {
  launch_chained(to_f16_kernel, dim3(blocks_for_elements(count, count % 4 == 0)), dim3(kThreads), 0,
                 static_cast<cudaStream_t>(stream), x, reinterpret_cast<__half*>(out), count);
}

void add_inplace(float* x, const float* y, int64_t count, void* stream) {
  launch_chained(add_kernel, dim3(blocks_for_elements(count, count % 4 == 0)), dim3(kThreads), 0,
                 static_cast<cudaStream_t>(stream), x, y, count);
}

void add_bias(float* x, const float* bias, int n, int cols, void* stream) {
  launch_chained(bias_kernel, dim3(blocks_for(int64_t(n) * cols)), dim3(kThreads), 0,
                 static_cast<cudaStream_t>(stream), x, bias, n, cols);
}

void mlp_activation(const float* in, int n, int F, int stride, bool gated, int act, float* out, void* stream,
                    uint16_t* out16) {
  const bool quads = F % 4 == 0 && stride % 4 == 0;  // activation_kernel's float4 path
  launch_chained(activation_kernel, dim3(blocks_for_elements(int64_t(n) * F, quads)), dim3(kThreads), 0,
                 static_cast<cudaStream_t>(stream), in, n, F, stride, gated, act, out,
                 reinterpret_cast<__half*>(out16));
}

void rope_and_store(float* qkv, int n, int stride, int n_heads, int n_kv_heads, int head_dim, int rotary_dim,
                    bool interleaved, const float* inv_freq, int k_off, int v_off, uint16_t* const* kv_slots,
                    const StepState* step, void* stream) {
  launch_chained(rope_store_kernel, dim3(unsigned(n)), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), qkv,
                 stride, n_heads, n_kv_heads, head_dim, rotary_dim, interleaved, inv_freq, k_off, v_off, kv_slots,
                 step);
}

}  // namespace pmpd::cuda
