// The prompt pass's causal attention on the tensor cores, in flash attention 2's form: a
// block of 4 warps takes 64 query tokens of one head, each warp 16 of them for the whole
// walk over the cache in tiles of 64 keys; S = Q K^T and O += P V are m16n8k16 mma
// instructions (f16 operands, f32 accumulation), the scores stay in the accumulator
// registers through the online softmax and become P's operand fragments without a trip
// through shared memory. The f32 kernel before it (attention_prefill.cu, kept for heads
// whose size is not a multiple of 8) runs the same work on the f32 pipes, which at long
// prompts made it a large part of the prompt pass.
//
// Accuracy: the keys and values are the cache's f16 already; q and P are not, so each is
// split into a high f16 part and a low f16 part (the rest), and each product is two mma
// instructions: q = qh + ql to ~2^-22 relative, so the scores and the output keep the f32
// kernel's accuracy (the CPU's f32 computation, 1e-4 in the test) at twice the mma work,
// which the tensor cores have to spare here.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kQueries = 16 * kWarps;  // a block's query tokens: 16 a warp (one mma's rows)
constexpr int kKeys = 64;              // a tile's keys
constexpr int kKeyTiles = kKeys / 8;    // the scores' 8-key accumulator tiles
constexpr int kThreads = 32 * kWarps;

// Halves a staged row takes for a head padded to 16 * NT dimensions: 8 more, so that a row is
// an odd number of 16-byte units and ldmatrix's 8 rows fall in 8 different bank groups.
__host__ __device__ constexpr int row_pitch(int nt) { return 16 * nt + 8; }

size_t mma_smem_bytes(int nt) { return sizeof(__half) * size_t(2 * kQueries + 2 * kKeys) * size_t(row_pitch(nt)); }

__device__ __forceinline__ void load_matrix_x4(uint32_t address, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void load_matrix_x4_transposed(uint32_t address, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
// d += a b: a the 16 x 16 row-major fragments, b0 b1 one 16 x 8 column-major fragment.
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Two 8-column tiles of one x4 load (b[0..1], b[2..3]) times an operand split in two parts:
// d0 += (hi + lo) b[0..1], d1 += (hi + lo) b[2..3].
__device__ __forceinline__ void mma_split_pair(float (&d0)[4], float (&d1)[4], const uint32_t (&hi)[4],
                                               const uint32_t (&lo)[4], const uint32_t (&b)[4]) {
  mma(d0, hi, b[0], b[1]);
  mma(d0, lo, b[0], b[1]);
  mma(d1, hi, b[2], b[3]);
  mma(d1, lo, b[2], b[3]);
}
// (x, y) as f16x2 high parts and the f16x2 of what they leave out.
__device__ __forceinline__ void split_half2(float x, float y, uint32_t& hi, uint32_t& lo) {
  const __half2 h = __floats2half2_rn(x, y);
  const float2 back = __half22float2(h);
  const __half2 rest = __floats2half2_rn(x - back.x, y - back.y);
  hi = *reinterpret_cast<const uint32_t*>(&h);
  lo = *reinterpret_cast<const uint32_t*>(&rest);
}

// Block (h, y): queries t0 .. t0 + 63 of head h, the blocks of the last queries (the longest
// walks) first; token t at position pos0 + t sees positions 0 .. pos0 + t. Warp w owns
// queries t0 + 16 w .. + 15: lane (g = lane / 4, c = lane % 4) holds rows g and g + 8 of its
// accumulators, columns 2c and 2c + 1 of each 8-column tile (the mma's fragment layout).
template <int NT>
__global__ void __launch_bounds__(kThreads) prefill_attention_mma_kernel(const float* q, int q_stride, int n,
                                                                         int n_heads, int n_kv_heads, int head_dim,
                                                                         uint16_t* const* kv_slots,
                                                                         const StepState* step, float* out) {
  constexpr int kDims = 16 * NT, kPitch = row_pitch(NT), kRowBytes = 2 * kPitch;
  extern __shared__ __align__(16) __half mma_smem[];
  __half* q_hi = mma_smem;                 // [kQueries][kPitch]
  __half* q_lo = q_hi + kQueries * kPitch;  // [kQueries][kPitch]
  __half* keys = q_lo + kQueries * kPitch;  // [kKeys][kPitch]
  __half* values = keys + kKeys * kPitch;   // [kKeys][kPitch]
  const int h = blockIdx.x, t0 = int(gridDim.y - 1 - blockIdx.y) * kQueries;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int hd = head_dim, kvh = h / (n_heads / n_kv_heads), kv_dim = n_kv_heads * hd;
  dev::chained_start();
  const __half* k_cache = reinterpret_cast<const __half*>(kv_slots[0]) + kvh * hd;
  const __half* v_cache = reinterpret_cast<const __half*>(kv_slots[1]) + kvh * hd;
  const int pos0 = step->pos0;
  const int last_key = pos0 + min(n, t0 + kQueries) - 1;  // the block's last key
  // Rows k0 .. k0 + 63 of a cache into a tile, 16 bytes a copy; zeros past the block's last
  // key and past the head (the pad dimensions then add nothing to S, and O's are dropped).
  auto stage = [&](const __half* cache, __half* tile, int k0) {
    for (int i = threadIdx.x; i < kKeys * 2 * NT; i += kThreads) {
      const int r = i / (2 * NT), col = 8 * (i % (2 * NT));
      const bool valid = k0 + r <= last_key && col < hd;
      dev::copy_async<16>(tile + r * kPitch + col, valid ? cache + int64_t(k0 + r) * kv_dim + col : cache, valid);
    }
    dev::copy_async_commit();
  };
  stage(k_cache, keys, 0);
  stage(v_cache, values, 0);
  // q, four floats a load (rows and heads are multiples of 8 floats), the loop unrolled so that a
  // thread's loads are in flight together (one at a time, a 128-token prompt's kernel took ~29 us).
  constexpr int kQuads = kDims / 4;
#pragma unroll 4
  for (int i = threadIdx.x; i < kQueries * kQuads; i += kThreads) {
    const int r = i / kQuads, col = 4 * (i % kQuads);
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (t0 + r < n && col < hd) v = *reinterpret_cast<const float4*>(q + int64_t(t0 + r) * q_stride + h * hd + col);
    uint32_t hi[2], lo[2];
    split_half2(v.x, v.y, hi[0], lo[0]);
    split_half2(v.z, v.w, hi[1], lo[1]);
    *reinterpret_cast<uint2*>(q_hi + r * kPitch + col) = make_uint2(hi[0], hi[1]);
    *reinterpret_cast<uint2*>(q_lo + r * kPitch + col) = make_uint2(lo[0], lo[1]);
  }

  // ldmatrix addresses of this lane. Q (A operand, x4): rows lane % 16, columns 8 (lane / 16).
  // K (B operand of S, x4 = two 8-key tiles): key 8 (m / 2) + r, dimensions 8 (m % 2) with
  // m = lane / 8, r = lane % 8. V (B operand of O, transposed x4 = two 8-dimension tiles):
  // key 8 (m % 2) + r, dimensions 8 (m / 2).
  const int m = lane / 8, r = lane % 8;
  const uint32_t qh_at = uint32_t(__cvta_generic_to_shared(q_hi + (16 * warp + lane % 16) * kPitch + 8 * (lane / 16)));
  const uint32_t ql_at = qh_at + uint32_t(kQueries * kRowBytes);
  const uint32_t k_at = uint32_t(__cvta_generic_to_shared(keys + (8 * (m / 2) + r) * kPitch + 8 * (m % 2)));
  const uint32_t v_at = uint32_t(__cvta_generic_to_shared(values + (8 * (m % 2) + r) * kPitch + 8 * (m / 2)));

  const float scale = rsqrtf(float(hd)) * 1.4426950408889634f;  // scores in log2 units, for exp2f
  float o[2 * NT][4];
#pragma unroll
  for (int d = 0; d < 2 * NT; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};  // row_sum: this lane's columns
  const int row0 = t0 + 16 * warp;
  const int warp_last_key = pos0 + min(n - 1, row0 + 15);
  // The last key each of this lane's two rows sees (-1: a row past the prompt sees none).
  const int sees[2] = {row0 + g < n ? pos0 + row0 + g : -1, row0 + g + 8 < n ? pos0 + row0 + g + 8 : -1};

  for (int k0 = 0; k0 <= last_key; k0 += kKeys) {
    const bool more = k0 + kKeys <= last_key;
    dev::copy_async_wait<1>();  // this tile's keys are in (its values may still be coming)
    __syncthreads();            // for every thread's copies, and q the first time
    const bool active = row0 < n && k0 <= warp_last_key;
    float s[kKeyTiles][4];
#pragma unroll
    for (int j = 0; j < kKeyTiles; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
    if (active) {
#pragma unroll
      for (int kt = 0; kt < NT; ++kt) {
        uint32_t a_hi[4], a_lo[4];
        load_matrix_x4(qh_at + 32u * kt, a_hi);
        load_matrix_x4(ql_at + 32u * kt, a_lo);
#pragma unroll
        for (int jp = 0; jp < kKeyTiles / 2; ++jp) {
          uint32_t b[4];
          load_matrix_x4(k_at + uint32_t(16 * jp * kRowBytes) + 32u * kt, b);
          mma_split_pair(s[2 * jp], s[2 * jp + 1], a_hi, a_lo, b);
        }
      }
    }
    __syncthreads();  // every warp has read the keys: the next tile's may come in
    if (more) stage(k_cache, keys, k0 + kKeys);
    if (more) dev::copy_async_wait<1>();  // this tile's values (the next keys may be coming)
    else dev::copy_async_wait<0>();
    __syncthreads();
    if (active) {
      // Online softmax, row by row: a row's max over the 4 lanes holding it (same g).
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& v = s[j][2 * half + e];
            v = k0 + 8 * j + 2 * c + e <= sees[half] ? v * scale : -INFINITY;
            mx = fmaxf(mx, v);
          }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mn = fmaxf(row_max[half], mx);
        // A row that has seen no key yet keeps max -inf (every score of it masked).
        const float corr = mn == -INFINITY ? 1.f : exp2f(row_max[half] - mn);
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& v = s[j][2 * half + e];
            v = v == -INFINITY ? 0.f : exp2f(v - mn);
            sum += v;
          }
        row_sum[half] = row_sum[half] * corr + sum;
        row_max[half] = mn;
#pragma unroll
        for (int d = 0; d < 2 * NT; ++d) o[d][2 * half] *= corr, o[d][2 * half + 1] *= corr;
      }
      // O += P V, 16 keys a step: the two 8-key score tiles are P's A fragments as they lie.
#pragma unroll
      for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
        uint32_t p_hi[4], p_lo[4];
        split_half2(s[2 * kk][0], s[2 * kk][1], p_hi[0], p_lo[0]);
        split_half2(s[2 * kk][2], s[2 * kk][3], p_hi[1], p_lo[1]);
        split_half2(s[2 * kk + 1][0], s[2 * kk + 1][1], p_hi[2], p_lo[2]);
        split_half2(s[2 * kk + 1][2], s[2 * kk + 1][3], p_hi[3], p_lo[3]);
#pragma unroll
        for (int dp = 0; dp < NT; ++dp) {
          uint32_t b[4];
          load_matrix_x4_transposed(v_at + uint32_t(16 * kk * kRowBytes) + 32u * dp, b);
          mma_split_pair(o[2 * dp], o[2 * dp + 1], p_hi, p_lo, b);
        }
      }
    }
    __syncthreads();  // every warp has read the values
    if (more) stage(v_cache, values, k0 + kKeys);
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float total = row_sum[half];
    total += __shfl_xor_sync(0xffffffffu, total, 1);
    total += __shfl_xor_sync(0xffffffffu, total, 2);
    const int t = row0 + g + 8 * half;
    if (t >= n) continue;
    float* dst = out + (int64_t(t) * n_heads + h) * hd;
    const float inv = 1.f / total;
#pragma unroll
    for (int d = 0; d < 2 * NT; ++d)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int dim = 8 * d + 2 * c + e;
        if (dim < hd) dst[dim] = o[d][2 * half + e] * inv;
      }
  }
}

// NT: the head's 16-dimension tiles, rounded up to an instantiated count.
template <typename F>
bool with_tiles(int head_dim, F&& f) {
  const int nt = (head_dim + 15) / 16;
  if (nt <= 2) return f(std::integral_constant<int, 2>{});
  if (nt <= 4) return f(std::integral_constant<int, 4>{});
  if (nt <= 5) return f(std::integral_constant<int, 5>{});
  if (nt <= 8) return f(std::integral_constant<int, 8>{});
  if (nt <= 16) return f(std::integral_constant<int, 16>{});
  return false;
}

int mma_setting() {  // PMPD_CUDA_PREFILL_MMA=0: the f32 kernel for every head
  static const int from_env = [] {
    const char* e = std::getenv("PMPD_CUDA_PREFILL_MMA");
    return e && std::string(e) == "0" ? 0 : 1;
  }();
  return from_env;
}
int mma_override = -1;  // set_prefill_attention_mma, for tests

}  // namespace

void set_prefill_attention_mma(int on) { mma_override = on; }

bool prefill_attention_mma_fits(int head_dim) {
  const int on = mma_override >= 0 ? mma_override : mma_setting();
  return on && head_dim % 8 == 0 && head_dim <= kMaxHeadDim;
}

size_t prefill_attention_mma_smem_bytes(int head_dim) {
  size_t bytes = 0;
  with_tiles(head_dim, [&](auto NT) {
    bytes = mma_smem_bytes(NT());
    return true;
  });
  return bytes;
}

bool prefill_attention_mma(const float* q, int n, int q_stride, int n_heads, int n_kv_heads, int head_dim,
                           uint16_t* const* kv_slots, const StepState* step, float* out, void* stream) {
  // q is read four floats at a time.
  if (!prefill_attention_mma_fits(head_dim) || q_stride % 4 || reinterpret_cast<uintptr_t>(q) % 16) return false;
  const dim3 grid{unsigned(n_heads), unsigned((n + kQueries - 1) / kQueries)};
  return with_tiles(head_dim, [&](auto NT) {
    constexpr auto kernel = prefill_attention_mma_kernel<NT()>;
    const size_t smem = mma_smem_bytes(NT());
    allow_dynamic_smem<kernel>(smem);
    launch_chained(kernel, grid, dim3(kThreads), smem, static_cast<cudaStream_t>(stream), q, q_stride, n, n_heads,
                   n_kv_heads, head_dim, kv_slots, step, out);
    return true;
  });
}

}  // namespace pmpd::cuda
