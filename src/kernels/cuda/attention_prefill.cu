// The prompt pass's causal attention on the device, on the f32 pipes (heads whose size is not
// a multiple of 8, or PMPD_CUDA_PREFILL_MMA=0; the others run on the tensor cores,
// attention_prefill_mma.cu), tiled as flash attention is: a block
// takes 64 query tokens of one head and walks the cache in tiles of 32 keys, each tile
// staged once in shared memory (as f32) and used by all 64 queries, with an online softmax.
// The kernel before it (one block per head and token, each reading the whole prefix from
// the cache) moved the prefix ~64 times more often: at 1920 prompt tokens it took most of
// the prompt pass. Arithmetic stays f32 (the keys and values are the cache's f16), as on the
// CPU (kernels/cpu/ops.cpp); only the order of the sums differs.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kRowsPerWarp = 8;
constexpr int kQueries = kWarps * kRowsPerWarp;  // a block's query tokens
constexpr int kKeys = 32;                        // a tile's keys: one a lane
constexpr int kThreads = 32 * kWarps;

// Floats a staged row takes: the head padded to whole float4 (the pad is zero, so the
// score loop reads 4 at a time) plus 4, which staggers rows across the banks.
__host__ __device__ inline int row_pitch(int head_dim) { return (head_dim + 3) / 4 * 4 + 4; }

// Rows [0, rows) of a tile from the f16 cache into shared memory as f32 (zero past the
// head and past `rows`): a float4 slot (two half2 loads) a thread where the head and its
// offsets are multiples of 8, else a half a thread.
__device__ void stage_rows(const __half* cache, int64_t first, int rows, int kv_dim, int col0, int hd, int pitch,
                           float* dst) {
  if (hd % 8 == 0 && kv_dim % 8 == 0 && col0 % 8 == 0) {
    const int per_row = pitch / 4;  // float4 slots a row (hd / 8 loads fill 2 each)
    for (int i = threadIdx.x; i < kKeys * per_row; i += blockDim.x) {
      const int r = i / per_row, c = 4 * (i % per_row);
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (r < rows && c < hd) {
        const __half2* src = reinterpret_cast<const __half2*>(cache + (first + r) * kv_dim + col0 + c);
        const float2 a = __half22float2(src[0]), b = __half22float2(src[1]);
        v = make_float4(a.x, a.y, b.x, b.y);
      }
      *reinterpret_cast<float4*>(dst + r * pitch + c) = v;
    }
    return;
  }
  for (int i = threadIdx.x; i < kKeys * pitch; i += blockDim.x) {
    const int r = i / pitch, c = i % pitch;
    dst[i] = r < rows && c < hd ? __half2float(cache[(first + r) * kv_dim + col0 + c]) : 0.f;
  }
}

// Block (h, b): queries t0 = 64 b .. t0 + 63 of head h (token t at position pos0 + t sees
// positions 0 .. pos0 + t). Warp w owns queries t0 + 8 w .. + 7 throughout: for a key tile,
// lane j scores key j against its 8 queries, the online softmax runs per query across the
// warp, and the warp's probabilities (through shared memory) weight the values, lane j
// accumulating dimensions j, j + 32, ... (ND of them) of its 8 queries' outputs.
template <int ND>
__global__ void __launch_bounds__(kThreads) prefill_attention_kernel(const float* q, int q_stride, int n, int n_heads,
                                                                     int n_kv_heads, int head_dim,
                                                                     uint16_t* const* kv_slots, const StepState* step,
                                                                     float* out) {
  extern __shared__ __align__(16) float smem[];
  const int hd = head_dim, pitch = row_pitch(hd);
  float* qs = smem;                   // [kQueries][pitch]
  float* ks = qs + kQueries * pitch;  // [kKeys][pitch]
  float* vs = ks + kKeys * pitch;     // [kKeys][pitch]
  float* ps = vs + kKeys * pitch;     // [kQueries][kKeys]: the tile's probabilities
  const int h = blockIdx.x, t0 = blockIdx.y * kQueries;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int kvh = h / (n_heads / n_kv_heads), kv_dim = n_kv_heads * hd;
  const __half* k_cache = reinterpret_cast<const __half*>(kv_slots[0]);
  const __half* v_cache = reinterpret_cast<const __half*>(kv_slots[1]);
  const float scale = rsqrtf(float(hd));
  dev::chained_start();
  const int pos0 = step->pos0;
  for (int i = threadIdx.x; i < kQueries * pitch; i += blockDim.x) {
    const int r = i / pitch, c = i % pitch;
    qs[i] = t0 + r < n && c < hd ? q[int64_t(t0 + r) * q_stride + h * hd + c] : 0.f;
  }
  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][ND];  // l: this lane's keys' share
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    m[i] = -INFINITY, l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < ND; ++j) o[i][j] = 0.f;
  }
  const int row0 = t0 + warp * kRowsPerWarp;                     // the warp's first query
  const int last_key = pos0 + min(n, t0 + kQueries) - 1;         // the block's last key
  const int warp_last_key = pos0 + min(n - 1, row0 + kRowsPerWarp - 1);
  for (int k0 = 0; k0 <= last_key; k0 += kKeys) {
    __syncthreads();  // the previous tile is consumed (and, the first time, q is staged)
    const int rows = min(kKeys, last_key + 1 - k0);
    stage_rows(k_cache, k0, rows, kv_dim, kvh * hd, hd, pitch, ks);
    stage_rows(v_cache, k0, rows, kv_dim, kvh * hd, hd, pitch, vs);
    __syncthreads();
    if (row0 >= n || k0 > warp_last_key) continue;  // no query of this warp sees the tile
    float s[kRowsPerWarp] = {};
    const float* kr = ks + lane * pitch;
    for (int d = 0; d < hd; d += 4) {
      const float4 kv = *reinterpret_cast<const float4*>(kr + d);
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
        const float4 qv = *reinterpret_cast<const float4*>(qs + (warp * kRowsPerWarp + i) * pitch + d);
        s[i] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
      }
    }
    const int key = k0 + lane;
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
      const int t = row0 + i;
      const bool seen = t < n && key <= pos0 + t;
      const float sc = seen ? s[i] * scale : -INFINITY;
      const float mn = fmaxf(m[i], dev::warp_max(sc));
      // A query that has seen no key yet keeps m = -inf (its tile is all masked).
      const float corr = mn == -INFINITY ? 1.f : expf(m[i] - mn);
      const float p = seen ? expf(sc - mn) : 0.f;
      l[i] = l[i] * corr + p;
      m[i] = mn;
#pragma unroll
      for (int j = 0; j < ND; ++j) o[i][j] *= corr;
      ps[(warp * kRowsPerWarp + i) * kKeys + lane] = p;
    }
    __syncwarp();
    for (int k = 0; k < kKeys; k += 4) {
      float4 pr[kRowsPerWarp];
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i)
        pr[i] = *reinterpret_cast<const float4*>(ps + (warp * kRowsPerWarp + i) * kKeys + k);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const float* vr = vs + (k + kk) * pitch + lane;
#pragma unroll
        for (int j = 0; j < ND; ++j) {
          const float v = lane + 32 * j < pitch ? vr[32 * j] : 0.f;
#pragma unroll
          for (int i = 0; i < kRowsPerWarp; ++i) {
            const float pk = kk == 0 ? pr[i].x : kk == 1 ? pr[i].y : kk == 2 ? pr[i].z : pr[i].w;
            o[i][j] += pk * v;
          }
        }
      }
    }
    __syncwarp();  // the warp's probabilities are read before the next tile overwrites them
  }
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int t = row0 + i;
    const float total = dev::warp_sum(l[i]);
    if (t >= n) continue;
    float* dst = out + (int64_t(t) * n_heads + h) * hd;
#pragma unroll
    for (int j = 0; j < ND; ++j)
      if (lane + 32 * j < hd) dst[lane + 32 * j] = o[i][j] / total;
  }
}

size_t prefill_smem_bytes(int head_dim) {
  return sizeof(float) * (size_t(kQueries + 2 * kKeys) * size_t(row_pitch(head_dim)) + size_t(kQueries) * kKeys);
}

}  // namespace

size_t attention_smem_bytes(int head_dim, int max_ctx) {
  return std::max({prefill_smem_bytes(head_dim), prefill_attention_mma_smem_bytes(head_dim),
                   attention_decode_smem_bytes(head_dim, max_ctx, 1)});
}

void attention(const float* q, int n, int q_stride, int n_heads, int n_kv_heads, int head_dim,
               uint16_t* const* kv_slots, int max_ctx, const StepState* step, float* out, void* stream) {
  PMPD_CUDA_REQUIRE(head_dim >= 1 && head_dim <= kMaxHeadDim && n_kv_heads >= 1 && n_heads % n_kv_heads == 0 && n >= 1 &&
                        n <= max_ctx,
                    "attention: bad head size, head counts or token count");
  // The tensor cores' kernel (attention_prefill_mma.cu) where the head fits it.
  if (prefill_attention_mma(q, n, q_stride, n_heads, n_kv_heads, head_dim, kv_slots, step, out, stream)) return;
  const size_t smem = prefill_smem_bytes(head_dim);
  dim3 grid{unsigned(n_heads), unsigned((n + kQueries - 1) / kQueries)};
  with_width<1>((head_dim + 31) / 32, [&](auto ND) {
    constexpr auto kernel = prefill_attention_kernel<ND()>;
    allow_dynamic_smem<kernel>(smem);
    launch_chained(kernel, grid, dim3(kThreads), smem, static_cast<cudaStream_t>(stream), q, q_stride, n, n_heads,
                   n_kv_heads, head_dim, kv_slots, step, out);
  });
}

}  // namespace pmpd::cuda
