// The any-precision GEMV over bit planes (DESIGN: Kernels and speed). One kernel
// family for every width B: a warp owns ROWS rows; each lane reads one 32-bit word of
// each of the B planes per row (32 columns; a warp's loads of a plane are one
// coalesced 128-byte line), keeps the matching 32 activations in registers for all
// ROWS rows, and turns the B words into 32 byte-wide codes with two integer operations
// per plane and 4 codes (shift, then masked merge). The row's 2^B centroids sit in
// shared memory as f32; products accumulate in f32.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"

namespace pmpd::cuda {

namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Bit k of the code (k = 0 most significant) of columns 8j + s, j = 0..3, gathered into
// bit (B-1-k) of byte j: one shift and one masked merge (LOP3) per plane.
template <int B, int S>
__device__ __forceinline__ uint32_t codes4(const uint32_t (&p)[B]) {
  uint32_t c = 0;
#pragma unroll
  for (int k = 0; k < B; ++k) {
    const int d = (B - 1 - k) - S;
    const uint32_t moved = d >= 0 ? (p[k] << d) : (p[k] >> (-d));
    c |= moved & (0x01010101u << (B - 1 - k));
  }
  return c;
}

template <int B, int S, int ROWS>
__device__ __forceinline__ void accumulate_phase(const uint32_t (&p)[ROWS][B], const float (&xv)[32],
                                                 const float (*lut)[1 << B], float (&acc)[ROWS]) {
#pragma unroll
  for (int rr = 0; rr < ROWS; ++rr) {
    const uint32_t c = codes4<B, S>(p[rr]);
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[rr] += lut[rr][(c >> (8 * j)) & 0xffu] * xv[8 * j + S];
  }
}

template <int B, int ROWS>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(DeviceBitPlanes m, const float* __restrict__ x,
                                                            float* __restrict__ y) {
  constexpr int T = 1 << B;
  __shared__ float lut[kWarps * ROWS][T];
  const int64_t block_row0 = int64_t(blockIdx.x) * kWarps * ROWS;
  const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
  for (int i = threadIdx.x; i < kWarps * ROWS * T; i += blockDim.x) {
    const int64_t r = block_row0 + i / T;
    lut[i / T][i % T] = r < m.rows ? __half2float(table[r * T + i % T]) : 0.f;
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row0 = block_row0 + int64_t(warp) * ROWS;
  if (row0 >= m.rows) return;
  const float(*my_lut)[T] = &lut[warp * ROWS];
  const int64_t words = m.plane_stride / 4;
  const uint32_t* planes = reinterpret_cast<const uint32_t*>(m.planes);
  const int64_t plane_words = m.rows * words;
  float acc[ROWS];
#pragma unroll
  for (int rr = 0; rr < ROWS; ++rr) acc[rr] = 0.f;

  for (int64_t w = lane; w < words; w += 32) {
    uint32_t p[ROWS][B];
#pragma unroll
    for (int rr = 0; rr < ROWS; ++rr) {
      const int64_t r = row0 + rr < m.rows ? row0 + rr : row0;  // a missing row repeats one (never written)
#pragma unroll
      for (int k = 0; k < B; ++k) p[rr][k] = __ldg(planes + k * plane_words + r * words + w);
    }
    float xv[32];
    const int64_t c0 = w * 32;
    if (c0 + 32 <= m.cols) {
      const float4* x4 = reinterpret_cast<const float4*>(x + c0);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        float4 v = __ldg(x4 + i);
        xv[4 * i] = v.x, xv[4 * i + 1] = v.y, xv[4 * i + 2] = v.z, xv[4 * i + 3] = v.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < 32; ++i) xv[i] = c0 + i < m.cols ? x[c0 + i] : 0.f;
    }
    accumulate_phase<B, 0, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 1, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 2, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 3, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 4, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 5, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 6, ROWS>(p, xv, my_lut, acc);
    accumulate_phase<B, 7, ROWS>(p, xv, my_lut, acc);
  }
#pragma unroll
  for (int rr = 0; rr < ROWS; ++rr) {
    const float s = warp_sum(acc[rr]);
    if (lane == 0 && row0 + rr < m.rows) y[row0 + rr] = s;
  }
}

__device__ __forceinline__ int code_at(const DeviceBitPlanes& m, int bits, int64_t r, int64_t j) {
  int code = 0;
  for (int k = 0; k < bits; ++k)
    code = (code << 1) | ((m.planes[(size_t(k) * m.rows + r) * m.plane_stride + (j >> 3)] >> (j & 7)) & 1);
  return code;
}

// DNS outliers replace the dense weight at their positions: y[r] += (value - dense) * x.
__global__ void sparse_fix_kernel(DeviceBitPlanes m, int bits, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t r = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= m.rows) return;
  const __half* table = reinterpret_cast<const __half*>(m.tables[bits]) + (r << bits);
  const __half* val = reinterpret_cast<const __half*>(m.sp_val);
  float s = 0.f;
  for (int32_t i = m.sp_rowptr[r] + lane; i < m.sp_rowptr[r + 1]; i += 32) {
    const int64_t j = m.sp_col[i];
    s += (__half2float(val[i]) - __half2float(table[code_at(m, bits, r, j)])) * x[j];
  }
  s = warp_sum(s);
  if (lane == 0) y[r] += s;
}

// One thread per 8 columns of a row: the codes of a byte of each plane.
__global__ void dequant_kernel(DeviceBitPlanes m, int bits, __half* __restrict__ out) {
  const int64_t bytes_per_row = (m.cols + 7) / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m.rows * bytes_per_row) return;
  const int64_t r = i / bytes_per_row, byte = i % bytes_per_row;
  const __half* table = reinterpret_cast<const __half*>(m.tables[bits]) + (r << bits);
  uint8_t p[8];
  for (int k = 0; k < bits; ++k) p[k] = m.planes[(size_t(k) * m.rows + r) * m.plane_stride + byte];
  for (int c = 0; c < 8; ++c) {
    const int64_t j = byte * 8 + c;
    if (j >= m.cols) break;
    int code = 0;
    for (int k = 0; k < bits; ++k) code = (code << 1) | ((p[k] >> c) & 1);
    out[r * m.cols + j] = table[code];
  }
}

__global__ void sparse_scatter_kernel(DeviceBitPlanes m, __half* __restrict__ out) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m.rows) return;
  const __half* val = reinterpret_cast<const __half*>(m.sp_val);
  for (int32_t i = m.sp_rowptr[r]; i < m.sp_rowptr[r + 1]; ++i) out[r * m.cols + m.sp_col[i]] = val[i];
}

template <int B>
void launch_width(const DeviceBitPlanes& m, const float* x, float* y, cudaStream_t s) {
  // Two rows a warp: twice the loads in flight per lane and the activations reused once.
  constexpr int ROWS = 2;
  const int64_t blocks = (m.rows + kWarps * ROWS - 1) / (kWarps * ROWS);
  gemv_kernel<B, ROWS><<<unsigned(blocks), kWarps * 32, 0, s>>>(m, x, y);
}

}  // namespace

void bitplane_gemv(const DeviceBitPlanes& m, int bits, const float* x, float* y, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  PMPD_CUDA_REQUIRE(bits >= m.bits_min && bits <= m.bits_max && bits >= 1 && bits <= 8,
                    "bit-plane GEMV at a width the matrix does not hold");
  switch (bits) {
    case 1: launch_width<1>(m, x, y, s); break;
    case 2: launch_width<2>(m, x, y, s); break;
    case 3: launch_width<3>(m, x, y, s); break;
    case 4: launch_width<4>(m, x, y, s); break;
    case 5: launch_width<5>(m, x, y, s); break;
    case 6: launch_width<6>(m, x, y, s); break;
    case 7: launch_width<7>(m, x, y, s); break;
    default: launch_width<8>(m, x, y, s); break;
  }
  PMPD_CUDA_CHECK(cudaGetLastError());
  if (m.nnz) {
    sparse_fix_kernel<<<unsigned((m.rows + kWarps - 1) / kWarps), kWarps * 32, 0, s>>>(m, bits, x, y);
    PMPD_CUDA_CHECK(cudaGetLastError());
  }
}

void bitplane_dequant_f16(const DeviceBitPlanes& m, int bits, uint16_t* out, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  PMPD_CUDA_REQUIRE(bits >= m.bits_min && bits <= m.bits_max, "dequantization at a width the matrix does not hold");
  const int64_t n = m.rows * ((m.cols + 7) / 8);
  dequant_kernel<<<unsigned((n + 255) / 256), 256, 0, s>>>(m, bits, reinterpret_cast<__half*>(out));
  PMPD_CUDA_CHECK(cudaGetLastError());
  if (m.nnz) {
    sparse_scatter_kernel<<<unsigned((m.rows + 255) / 256), 256, 0, s>>>(m, reinterpret_cast<__half*>(out));
    PMPD_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace pmpd::cuda
