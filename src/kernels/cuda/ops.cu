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
using dev::rotate_head;
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

void argmax(const float* x, int n, int* out, void* stream, const NextStep& next) {
  launch_chained(argmax_kernel, dim3(1), dim3(1024), 0, static_cast<cudaStream_t>(stream), x, n, out, next.token,
                 next.step, next.advance);
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

}  // namespace pmpd::cuda
