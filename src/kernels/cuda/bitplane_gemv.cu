// The any-precision GEMV over bit planes (DESIGN: Kernels and speed; the measured
// history of this kernel is in docs/cuda.md). One kernel family for every width B:
//  - each block first stages the input vector in shared memory, applying the operator
//    before the layer (RMSNorm, LayerNorm, activation) on the way, in a column order
//    where lane w of a warp finds column 32w + c at xs[c][w]: conflict-free reads;
//  - a warp owns R rows at a time; each lane reads one 32-bit word of each of the B
//    planes per row (32 columns; a warp's reads of a plane are one coalesced 128-byte
//    line), U words ahead, and turns the B words into 32 byte-wide codes with two
//    integer operations per plane and 4 codes (shift, then masked merge);
//  - the rows' 2^B-entry centroid tables sit in shared memory as f32, products
//    accumulate in f32, DNS outliers are applied in the same pass, and the epilogue adds
//    a bias and/or the residual.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;

// Words of 32 columns per row, and the padded pitch of the staged input.
__host__ __device__ inline int words_of(const DeviceBitPlanes& m) { return int(m.plane_stride / 4); }
__host__ __device__ inline int pitch_of(const DeviceBitPlanes& m) { return words_of(m) + 1; }

// in(x)[c] for every column (zero past cols), stored transposed: xs[(c % 32) * pitch + c / 32].
__device__ void stage_input(const GemvInput& in, int64_t cols, int words, int pitch, float* xs) {
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
  for (int64_t c = threadIdx.x; c < int64_t(words) * 32; c += blockDim.x) {
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
        case GemvPrologue::Fragments: break;  // the tensor-core GEMV's alone (rejected on the host)
      }
    }
    xs[(c & 31) * pitch + (c >> 5)] = v;
  }
  __syncthreads();
}

// Bit k of the code (k = 0 most significant) of columns 8j + S, j = 0..3, gathered into
// bit (B-1-k) of byte j.
template <int B, int S>
__device__ __forceinline__ uint32_t codes4(const uint32_t (&p)[B]) {
  uint32_t c = 0;
#pragma unroll
  for (int k = 0; k < B; ++k) {
    constexpr int kShiftBase = B - 1 - S;
    const int d = kShiftBase - k;
    const uint32_t moved = d >= 0 ? (p[k] << d) : (p[k] >> (-d));
    c |= moved & (0x01010101u << (B - 1 - k));
  }
  return c;
}

template <int B, int R, int S>
__device__ __forceinline__ void accumulate_phase(const uint32_t (&p)[R][B], const float* xs, int pitch, int w,
                                                 const float (*lut)[1 << B], float (&acc)[R]) {
  uint32_t c[R];
#pragma unroll
  for (int rr = 0; rr < R; ++rr) c[rr] = codes4<B, S>(p[rr]);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float x = xs[(8 * j + S) * pitch + w];
#pragma unroll
    for (int rr = 0; rr < R; ++rr) acc[rr] += lut[rr][(c[rr] >> (8 * j)) & 0xffu] * x;
  }
}

template <int B, int R, int U>
__global__ void __launch_bounds__(kThreads) gemv_kernel(DeviceBitPlanes m, GemvInput in, GemvOutput out) {
  constexpr int T = 1 << B;
  extern __shared__ float smem[];
  const int words = words_of(m), pitch = pitch_of(m);
  float* xs = smem;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float(*lut)[T] = reinterpret_cast<float(*)[T]>(smem + 32 * pitch + warp * R * T);
  const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
  const uint32_t* planes = reinterpret_cast<const uint32_t*>(m.planes);
  const int64_t plane_words = m.rows * words;
  const int64_t groups = (m.rows + R - 1) / R;
  // No early start for the kernel after this one: its blocks would sit on our SMs while
  // we run, and this kernel is bound by issue, not bytes (measured: the 5-bit MLP
  // projections 86 -> 137 us with it on an H200).
  dev::wait_for_producer();  // x is the previous kernel's output
  stage_input(in, m.cols, words, pitch, xs);

  for (int64_t g = int64_t(blockIdx.x) * kWarps + warp; g < groups; g += int64_t(gridDim.x) * kWarps) {
    const int64_t row0 = g * R;
    __syncwarp();
    for (int i = lane; i < R * T; i += 32) {
      const int64_t r = row0 + i / T;
      lut[i / T][i % T] = r < m.rows ? __half2float(table[r * T + i % T]) : 0.f;
    }
    __syncwarp();
    float acc[R];
#pragma unroll
    for (int rr = 0; rr < R; ++rr) acc[rr] = 0.f;
    for (int w0 = lane; w0 < words; w0 += 32 * U) {
      uint32_t p[U][R][B];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int w = w0 + 32 * u;
#pragma unroll
        for (int rr = 0; rr < R; ++rr) {
          const int64_t r = row0 + rr < m.rows ? row0 + rr : row0;  // a missing row repeats one (never written)
#pragma unroll
          for (int k = 0; k < B; ++k) p[u][rr][k] = w < words ? __ldg(planes + k * plane_words + r * words + w) : 0u;
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int w = w0 + 32 * u;
        if (w >= words) break;
        accumulate_phase<B, R, 0>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 1>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 2>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 3>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 4>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 5>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 6>(p[u], xs, pitch, w, lut, acc);
        accumulate_phase<B, R, 7>(p[u], xs, pitch, w, lut, acc);
      }
    }
    if (m.nnz) {  // DNS outliers replace the dense weight: + (value - dense) * x
      const __half* val = reinterpret_cast<const __half*>(m.sp_val);
#pragma unroll
      for (int rr = 0; rr < R; ++rr) {
        const int64_t r = row0 + rr;
        if (r >= m.rows) break;
        for (int32_t i = m.sp_rowptr[r] + lane; i < m.sp_rowptr[r + 1]; i += 32) {
          const int64_t j = m.sp_col[i];
          acc[rr] += (__half2float(val[i]) - lut[rr][dev::code_at(m, B, r, j)]) * xs[(j & 31) * pitch + (j >> 5)];
        }
      }
    }
#pragma unroll
    for (int rr = 0; rr < R; ++rr) {
      const float s = dev::warp_sum(acc[rr]);
      const int64_t r = row0 + rr;
      if (lane == 0 && r < m.rows) {
        float v = s + (out.bias ? out.bias[r] : 0.f);
        out.y[r] = out.accumulate ? out.y[r] + v : v;
      }
    }
  }
}

__global__ void prologue_kernel(GemvInput in, int64_t cols, float* out) {
  dev::chained_start();
  extern __shared__ float xs[];
  const int words = int((cols + 31) / 32), pitch = words + 1;
  stage_input(in, cols, words, pitch, xs);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[c] = xs[(c & 31) * pitch + (c >> 5)];
}

// One thread per 32 weights of a row (one 32-bit word of each plane): the codes are
// gathered from B words, looked up in the row's table (through L1) and written as four
// 16-byte stores where the row allows (columns a multiple of 8, whole words), else one half
// at a time. The prefill reads every weight of a layer through here before its GEMM.
template <int B>
__global__ void dequant_kernel(DeviceBitPlanes m, __half* __restrict__ out) {
  const int words = words_of(m);
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m.rows * words) return;
  const int64_t r = i / words;
  const int w = int(i % words);
  const __half* table = reinterpret_cast<const __half*>(m.tables[B]) + (r << B);
  uint32_t p[B];
#pragma unroll
  for (int k = 0; k < B; ++k) p[k] = __ldg(reinterpret_cast<const uint32_t*>(m.planes + (size_t(k) * m.rows + r) * m.plane_stride) + w);
  __half* dst = out + r * m.cols + 32 * int64_t(w);
  const int64_t left = m.cols - 32 * int64_t(w);
  auto code = [&](int c) {
    int v = 0;
#pragma unroll
    for (int k = 0; k < B; ++k) v = (v << 1) | ((p[k] >> c) & 1);
    return v;
  };
  if (left >= 32 && m.cols % 8 == 0) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      uint32_t h[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        h[j] = uint32_t(__half_as_ushort(__ldg(table + code(8 * q + 2 * j)))) |
               (uint32_t(__half_as_ushort(__ldg(table + code(8 * q + 2 * j + 1)))) << 16);
      reinterpret_cast<uint4*>(dst)[q] = make_uint4(h[0], h[1], h[2], h[3]);
    }
  } else {
    for (int c = 0; c < 32 && c < left; ++c) dst[c] = __ldg(table + code(c));
  }
}

__global__ void sparse_scatter_kernel(DeviceBitPlanes m, __half* __restrict__ out) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m.rows) return;
  const __half* val = reinterpret_cast<const __half*>(m.sp_val);
  for (int32_t i = m.sp_rowptr[r]; i < m.sp_rowptr[r + 1]; ++i) out[r * m.cols + m.sp_col[i]] = val[i];
}

template <int B>
void launch_width(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  // Four rows a warp: the staged input is read once per four weights. Narrow widths
  // read two words ahead to keep enough bytes in flight.
  constexpr int R = 4, U = B <= 4 ? 2 : 1;
  const size_t smem = sizeof(float) * (size_t(32) * pitch_of(m) + size_t(kWarps) * R * (1u << B));
  const int per_sm = blocks_per_sm<gemv_kernel<B, R, U>>(kThreads, smem);
  PMPD_CUDA_REQUIRE(per_sm > 0, "bit-plane GEMV: the input row does not fit in shared memory");
  // As many blocks as fit at once, trimmed so every warp gets the same number of row groups.
  const int64_t groups = (m.rows + R - 1) / R;
  const int64_t resident = int64_t(per_sm) * multiprocessor_count();
  const int64_t rounds = (groups + resident * kWarps - 1) / (resident * kWarps);
  const int64_t blocks = std::max<int64_t>(1, (groups + rounds * kWarps - 1) / (rounds * kWarps));
  launch_chained(gemv_kernel<B, R, U>, dim3(unsigned(blocks)), dim3(kThreads), smem, s, m, in, out);
}

}  // namespace

void bitplane_gemv(const DeviceBitPlanes& m, int bits, const GemvInput& in, const GemvOutput& out, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  PMPD_CUDA_REQUIRE(bits >= m.bits_min && bits <= m.bits_max && bits >= 1 && bits <= 8,
                    "bit-plane GEMV at a width the matrix does not hold");
  if (pair_lut_gemv(m, bits, in, out, stream)) return;
  PMPD_CUDA_REQUIRE(in.prologue != GemvPrologue::Fragments && !out.fragments && !out.norm_fragments,
                    "bit-plane GEMV: f16 fragments in or out need the tensor-core GEMV (pair_lut_serves)");
  PMPD_CUDA_REQUIRE(m.planes, "bit-plane GEMV: the planes were not kept on the device (the tensor-core GEMV serves it)");
  with_width(bits, [&](auto B) { launch_width<B()>(m, in, out, s); });
  PMPD_CUDA_CHECK(cudaGetLastError());
}

void bitplane_gemv(const DeviceBitPlanes& m, int bits, const float* x, float* y, void* stream) {
  GemvInput in;
  in.x = x;
  GemvOutput out;
  out.y = y;
  bitplane_gemv(m, bits, in, out, stream);
}

void apply_prologue(const GemvInput& in, int64_t cols, float* out, void* stream) {
  PMPD_CUDA_REQUIRE(in.prologue != GemvPrologue::Fragments, "apply_prologue: fragments are already the input");
  const size_t smem = sizeof(float) * size_t(32) * size_t((cols + 31) / 32 + 1);
  allow_dynamic_smem<prologue_kernel>(smem);
  launch_chained(prologue_kernel, dim3(1), dim3(1024), smem, static_cast<cudaStream_t>(stream), in, cols, out);
}

void bitplane_dequant_f16(const DeviceBitPlanes& m, int bits, uint16_t* out, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  PMPD_CUDA_REQUIRE(bits >= m.bits_min && bits <= m.bits_max, "dequantization at a width the matrix does not hold");
  if (m.planes && !(m.tiled && bits <= m.tiled_planes)) {  // the tiles dequantize faster where they hold the width
    const int64_t n = m.rows * words_of(m);
    const unsigned blocks = unsigned((n + 255) / 256);
    __half* o = reinterpret_cast<__half*>(out);
    with_width(bits, [&](auto B) { dequant_kernel<B()><<<blocks, 256, 0, s>>>(m, o); });
    PMPD_CUDA_CHECK(cudaGetLastError());
  } else {
    tiled_dequant_f16(m, bits, out, stream);
  }
  if (m.nnz) {
    sparse_scatter_kernel<<<unsigned((m.rows + 255) / 256), 256, 0, s>>>(m, reinterpret_cast<__half*>(out));
    PMPD_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace pmpd::cuda
