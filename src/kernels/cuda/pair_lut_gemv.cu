// The decode GEMV for widths 2..4 on tensor cores (docs/cuda.md, kernel v4). The
// bit-plane GEMV of bitplane_gemv.cu spends ~6 integer instructions and 1.25 shared-memory
// reads per weight and reaches a quarter of HBM bandwidth on an H100; here a weight costs
// about one instruction:
//  - the planes are re-tiled at load (tile_bitplanes) so that each lane's 32-bit word of a
//    plane holds exactly the weights it feeds to mma.m16n8k16 (x is the A operand, row 0
//    of 16; W^T the B operand, 8 rows of W), in a bit order that does not depend on the
//    width read: narrower widths still read fewer planes;
//  - B plane words become 4 registers of pair indices with B+1 integer operations each
//    (mask-merge, one rotate): every byte holds the interleaved codes of two weights;
//  - a pair index becomes a shared-memory address with one PRMT, and one 32-bit load of a
//    "pair table" (2^(2B) entries of f16x2: both weights' centroids) gives the mma operand.
//    Each lane has its own copy of the table in its own bank: no bank conflicts;
//  - mma accumulates in f32; x enters in f16 (as the 16-bit cuBLAS path's does).
// A block owns 16 rows; its 8 warps split the columns and share the tables.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16;  // two row blocks of 8 (the mma's N)

// ---- The tile layout -------------------------------------------------------------
// Word (k, rb, cp, lane, h) of tiled[] = (((k * RB + rb) * CP + cp) * 32 + lane) * 2 + h
// holds plane k of row 8 rb + lane / 4, chunk c = 2 cp + h (128 columns). Its 16 pairs
// p = 2 j + hh (k-block j of 16 columns; hh: mma register b0 or b1) cover columns
// 128 c + 16 j + 8 hh + 2 (lane % 4) + {0, 1}. Pair p = 4 r + i (register r, byte i) keeps
// its two bits (first column, second column) at
//   P(k, r, i) = 8 ((i - [r < k]) mod 4) + 2 ((r - k) mod 4),  P + 1,
// so one rotation by rho(r) = 2 (r - B + 1) (mod 32) brings every plane's bits of register
// r to byte bits 2 (B-1-k) and 2 (B-1-k) + 1, whatever k: the pair index interleaves the
// two codes (first code in the even bits, second in the odd bits).
__host__ __device__ constexpr int bit_position(int k, int r, int i) {
  return 8 * ((i - (r < k ? 1 : 0) + 4) % 4) + 2 * ((r - k + 4) % 4);
}
template <int B>
__device__ constexpr int rho(int r) {
  return ((2 * (r - B + 1)) % 32 + 32) % 32;
}
__device__ constexpr uint32_t rotl(uint32_t v, int s) { return s == 0 ? v : (v << s) | (v >> (32 - s)); }
// Bits of plane k that register r takes, before its rotation.
template <int B>
__device__ constexpr uint32_t plane_mask(int k, int r) {
  return rotl(0x03030303u << (2 * (B - 1 - k)), rho<B>(r));
}
// The code of the first (even bits) or second (odd bits) weight of a pair index.
__host__ __device__ constexpr int even_bits(int e) {
  int v = 0;
  for (int m = 0; 2 * m < 16; ++m) v |= ((e >> (2 * m)) & 1) << m;
  return v;
}
__host__ __device__ constexpr int odd_bits(int e) { return even_bits(e >> 1); }

// Shared memory: pair tables first (entry e of row block q for lane L at byte
// 256 e + 128 q + 4 L: the PRMT below builds that address), then x in mma fragment order,
// then the warps' partial sums.
template <int B>
__host__ __device__ constexpr size_t table_bytes() {
  return size_t(256) << (2 * B);
}

struct Layout {
  int64_t row_blocks, chunk_pairs;  // RB (even), CP
};
__host__ __device__ inline Layout layout_of(const DeviceBitPlanes& m) {
  return {(m.rows + kRows - 1) / kRows * 2, (m.cols + 255) / 256};
}

// x (after the prologue) as f16 in fragment order: the half of column col sits at
// (((c * 8 + j) * 4 + t) * 2 + hh) * 2 + (col & 1), c = col / 128, j = col / 16 % 8,
// t = col % 8 / 2, hh = col % 16 / 8; a lane reads its (a0, a2) pair as one 8-byte word.
__device__ __forceinline__ int x_slot(int64_t col) {
  const int64_t c = col >> 7;
  const int j = int(col >> 4) & 7, kk = int(col & 15);
  return int((((c * 8 + j) * 4 + ((kk & 7) >> 1)) * 2 + (kk >> 3)) * 2 + (kk & 1));
}

__device__ void stage_fragments(const GemvInput& in, int64_t cols, int64_t padded, __half* xs) {
  float scale = 1.f, mean = 0.f;
  if (in.prologue == GemvPrologue::RmsNorm) {
    float ss = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) ss += in.x[c] * in.x[c];
    scale = rsqrtf(dev::block_sum(ss) / float(cols) + in.eps);
  } else if (in.prologue == GemvPrologue::LayerNorm) {
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += in.x[c];
    mean = dev::block_sum(s) / float(cols);
    float v = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) v += (in.x[c] - mean) * (in.x[c] - mean);
    scale = rsqrtf(dev::block_sum(v) / float(cols) + in.eps);
  }
  for (int64_t c = threadIdx.x; c < padded; c += blockDim.x) {
    float v = 0.f;
    if (c < cols) {
      switch (in.prologue) {
        case GemvPrologue::None: v = in.x[c]; break;
        case GemvPrologue::RmsNorm: v = in.norm_w[c] * (in.x[c] * scale); break;
        case GemvPrologue::LayerNorm:
          v = (in.x[c] - mean) * scale * in.norm_w[c] + (in.norm_b ? in.norm_b[c] : 0.f);
          break;
        case GemvPrologue::GatedActivation: v = dev::activation(in.x[c], in.act) * in.x[cols + c]; break;
        case GemvPrologue::Activation: v = dev::activation(in.x[c], in.act); break;
      }
    }
    xs[x_slot(c)] = __float2half_rn(v);
  }
}

__device__ __forceinline__ uint32_t pack_half2(__half lo, __half hi) {
  return uint32_t(__half_as_ushort(lo)) | (uint32_t(__half_as_ushort(hi)) << 16);
}

// This warp's share of the pair-table entries of both row blocks, for every lane's copy.
// Warp w fills entries e = w * n + u (n = 2^(2B) / 8): their first codes are first_w + the
// even bits of u, their second codes second_w + the odd bits of u, so each lane loads the
// few centroids it needs once and the unrolled loop picks registers by constant index.
template <int B>
__device__ void fill_tables(const DeviceBitPlanes& m, int64_t row0, uint8_t* smem) {
  constexpr int kEntries = 1 << (2 * B), kPerWarp = kEntries / kWarps;
  constexpr int kUBits = kPerWarp == 1 ? 0 : kPerWarp == 2 ? 1 : kPerWarp == 4 ? 2 : kPerWarp == 8 ? 3 : kPerWarp == 16 ? 4 : 5;
  constexpr int kFirst = 1 << ((kUBits + 1) / 2), kSecond = 1 << (kUBits / 2);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int e0 = warp * kPerWarp;
  const int first_w = even_bits(e0), second_w = odd_bits(e0);
  const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    const int64_t row = row0 + 8 * q + lane / 4;
    __half f[kFirst], s[kSecond];
#pragma unroll
    for (int i = 0; i < kFirst; ++i) f[i] = row < m.rows ? table[(row << B) + first_w + i] : __half(0.f);
#pragma unroll
    for (int i = 0; i < kSecond; ++i) s[i] = row < m.rows ? table[(row << B) + second_w + i] : __half(0.f);
    uint32_t* dst = reinterpret_cast<uint32_t*>(smem) + 32 * q + lane;
#pragma unroll
    for (int u = 0; u < kPerWarp; ++u) dst[(e0 + u) * 64] = pack_half2(f[even_bits(u)], s[odd_bits(u)]);
  }
}

__device__ __forceinline__ void mma_16816(float (&d)[4], uint2 a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a.x), "r"(a.x), "r"(a.y), "r"(a.y), "r"(b0), "r"(b1));
}

// One row block, one chunk: the B plane words -> 16 pair loads -> 8 mma.
template <int B>
__device__ __forceinline__ void chunk_mma(const uint32_t (&p)[B], const uint2 (&xf)[8], uint32_t lane_base,
                                          const uint8_t* tables, float (&acc)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    uint32_t t = p[0] & plane_mask<B>(0, r);
#pragma unroll
    for (int k = 1; k < B; ++k) t |= p[k] & plane_mask<B>(k, r);
    const uint32_t c = __funnelshift_r(t, t, rho<B>(r));
#pragma unroll
    for (int i = 0; i < 4; i += 2) {
      // Byte i of c becomes byte 1 of the address (256 e); bytes 0, 2, 3 are the lane's.
      const uint32_t a0 = __byte_perm(lane_base, c, 0x3200u | ((4u + i) << 4));
      const uint32_t a1 = __byte_perm(lane_base, c, 0x3200u | ((5u + i) << 4));
      const uint32_t b0 = *reinterpret_cast<const uint32_t*>(tables + a0);
      const uint32_t b1 = *reinterpret_cast<const uint32_t*>(tables + a1);
      mma_16816(acc, xf[2 * r + i / 2], b0, b1);
    }
  }
}

__device__ __forceinline__ int code_at(const DeviceBitPlanes& m, int bits, int64_t r, int64_t j) {
  int code = 0;
  for (int k = 0; k < bits; ++k)
    code = (code << 1) | ((m.planes[(size_t(k) * m.rows + r) * m.plane_stride + (j >> 3)] >> (j & 7)) & 1);
  return code;
}

template <int B>
__global__ void __launch_bounds__(kThreads) pair_lut_gemv_kernel(DeviceBitPlanes m, GemvInput in, GemvOutput out) {
  extern __shared__ __align__(16) uint8_t smem[];
  const Layout lay = layout_of(m);
  const int64_t padded = lay.chunk_pairs * 256;
  uint8_t* tables = smem;
  __half* xs = reinterpret_cast<__half*>(smem + table_bytes<B>());
  float* partial = reinterpret_cast<float*>(smem + table_bytes<B>() + size_t(padded) * 2);  // [kWarps][16]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  stage_fragments(in, m.cols, padded, xs);  // once per block: blocks loop over row tasks
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint2* xsv = reinterpret_cast<const uint2*>(xs);
  const uint32_t lane_base[2] = {uint32_t(4 * lane), uint32_t(4 * lane + 128)};
  for (int64_t task = blockIdx.x; task < lay.row_blocks / 2; task += gridDim.x) {
    const int64_t rb0 = task * 2, row0 = rb0 * 8;
    __syncthreads();  // the previous task's tables and partial sums are no longer read
    fill_tables<B>(m, row0, smem);
    __syncthreads();
    float acc[2][4] = {};
    // word (k, rb0 + q, cp, lane) as uint2 (both chunks of the pair)
    auto word = [&](int k, int q, int64_t cp) {
      return tiled + ((int64_t(k) * lay.row_blocks + rb0 + q) * lay.chunk_pairs + cp) * 32 + lane;
    };
    uint2 w[2][B];
    int64_t cp = warp;
    if (cp < lay.chunk_pairs) {
#pragma unroll
      for (int q = 0; q < 2; ++q)
#pragma unroll
        for (int k = 0; k < B; ++k) w[q][k] = __ldg(word(k, q, cp));
    }
    for (; cp < lay.chunk_pairs; cp += kWarps) {
      uint2 next[2][B];
      const int64_t np = cp + kWarps;
      if (np < lay.chunk_pairs) {  // the next pair's planes are in flight while this one computes
#pragma unroll
        for (int q = 0; q < 2; ++q)
#pragma unroll
          for (int k = 0; k < B; ++k) next[q][k] = __ldg(word(k, q, np));
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        uint2 xf[8];
        const int64_t c = 2 * cp + h;
#pragma unroll
        for (int j = 0; j < 8; ++j) xf[j] = xsv[(c * 8 + j) * 4 + (lane & 3)];
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          uint32_t p[B];
#pragma unroll
          for (int k = 0; k < B; ++k) p[k] = h ? w[q][k].y : w[q][k].x;
          chunk_mma<B>(p, xf, lane_base[q], tables, acc[q]);
        }
      }
      if (np < lay.chunk_pairs) {
#pragma unroll
        for (int q = 0; q < 2; ++q)
#pragma unroll
          for (int k = 0; k < B; ++k) w[q][k] = next[q][k];
      }
    }
    // Row 0 of D: lanes 0..3 hold rows 2t, 2t + 1 of each row block.
    if (lane < 4) {
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        partial[warp * kRows + 8 * q + 2 * lane] = acc[q][0];
        partial[warp * kRows + 8 * q + 2 * lane + 1] = acc[q][1];
      }
    }
    __syncthreads();
    if (m.nnz) {  // DNS outliers replace the dense weight: + (value - dense) * x; warp w: rows w, w + 8
      const __half* val = reinterpret_cast<const __half*>(m.sp_val);
      const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
      for (int rr = warp; rr < kRows; rr += kWarps) {
        const int64_t r = row0 + rr;
        float s = 0.f;
        if (r < m.rows)
          for (int32_t i = m.sp_rowptr[r] + lane; i < m.sp_rowptr[r + 1]; i += 32) {
            const int64_t j = m.sp_col[i];
            s += (__half2float(val[i]) - __half2float(table[(r << B) + code_at(m, B, r, j)])) *
                 __half2float(xs[x_slot(j)]);
          }
        s = dev::warp_sum(s);
        if (lane == 0) partial[kWarps * kRows + rr] = s;
      }
      __syncthreads();
    }
    if (threadIdx.x < kRows) {
      const int64_t r = row0 + threadIdx.x;
      float s = m.nnz ? partial[kWarps * kRows + threadIdx.x] : 0.f;
      for (int w2 = 0; w2 < kWarps; ++w2) s += partial[w2 * kRows + threadIdx.x];
      if (r < m.rows) {
        const float v = s + (out.bias ? out.bias[r] : 0.f);
        out.y[r] = out.accumulate ? out.y[r] + v : v;
      }
    }
  }
}

template <int B>
bool launch(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  const Layout lay = layout_of(m);
  auto kernel = pair_lut_gemv_kernel<B>;
  const size_t smem = table_bytes<B>() + size_t(lay.chunk_pairs) * 512 + sizeof(float) * 2 * kWarps * kRows;
  if (smem > 227 * 1024) return false;  // x too long for shared memory: the bit-plane GEMV serves it
  static size_t raised = 48 * 1024;  // per instantiation
  if (smem > raised) {
    PMPD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    raised = smem;
  }
  // Persistent blocks: as many as fit at once (each stages x once), looping over row tasks.
  static size_t occupancy_smem = 0;
  static int per_sm = 0;
  if (smem != occupancy_smem) {
    PMPD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
    occupancy_smem = smem;
  }
  const int64_t tasks = lay.row_blocks / 2;
  static const int cap = [] {  // experiment knob: PMPD_PAIR_BLOCKS_PER_SM
    const char* e = std::getenv("PMPD_PAIR_BLOCKS_PER_SM");
    return e ? std::atoi(e) : 0;
  }();
  const int64_t resident = std::max(1, cap > 0 ? std::min(cap, per_sm) : per_sm) * int64_t(multiprocessor_count());
  const int64_t rounds = (tasks + resident - 1) / resident;
  const int64_t blocks = (tasks + rounds - 1) / rounds;
  kernel<<<unsigned(blocks), kThreads, smem, s>>>(m, in, out);
  return true;
}

// One thread per tiled word: gathers its 32 bits from the on-disk planes.
__global__ void tile_kernel(DeviceBitPlanes m, int planes, uint32_t* __restrict__ out) {
  const Layout lay = layout_of(m);
  const int64_t words = int64_t(planes) * lay.row_blocks * lay.chunk_pairs * 64;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= words) return;
  const int h = int(idx & 1), lane = int((idx >> 1) & 31);
  int64_t rest = idx >> 6;
  const int64_t cp = rest % lay.chunk_pairs;
  rest /= lay.chunk_pairs;
  const int64_t rb = rest % lay.row_blocks;
  const int k = int(rest / lay.row_blocks);
  const int64_t row = rb * 8 + lane / 4, c = 2 * cp + h;
  const int t = lane % 4;
  uint32_t word = 0;
  if (row < m.rows)
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < 4; ++i) {
        const int p = 4 * r + i, j = p / 2, hh = p % 2;
        const int64_t col = c * 128 + 16 * j + 8 * hh + 2 * t;
        for (int second = 0; second < 2; ++second) {
          const int64_t cc = col + second;
          if (cc >= m.cols) continue;
          const uint32_t bit = (m.planes[(size_t(k) * m.rows + row) * m.plane_stride + (cc >> 3)] >> (cc & 7)) & 1u;
          word |= bit << (bit_position(k, r, i) + second);
        }
      }
  out[idx] = word;
}

}  // namespace

int64_t tiled_words(const DeviceBitPlanes& m, int planes) {
  const Layout lay = layout_of(m);
  return int64_t(planes) * lay.row_blocks * lay.chunk_pairs * 64;
}

void tile_bitplanes(const DeviceBitPlanes& m, int planes, uint32_t* out, void* stream) {
  PMPD_CUDA_REQUIRE(planes >= 1 && planes <= kTiledPlanesMax && planes <= m.bits_max, "tile_bitplanes: bad plane count");
  const int64_t n = tiled_words(m, planes);
  tile_kernel<<<unsigned((n + 255) / 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(m, planes, out);
  PMPD_CUDA_CHECK(cudaGetLastError());
}

bool pair_lut_gemv(const DeviceBitPlanes& m, int bits, const GemvInput& in, const GemvOutput& out, void* stream) {
  if (!m.tiled || bits < 2 || bits > m.tiled_planes) return false;
  auto s = static_cast<cudaStream_t>(stream);
  const bool launched = bits == 2 ? launch<2>(m, in, out, s) : bits == 3 ? launch<3>(m, in, out, s) : launch<4>(m, in, out, s);
  PMPD_CUDA_CHECK(cudaGetLastError());
  return launched;
}

}  // namespace pmpd::cuda
