#include "kernels/cpu/bitplane.h"

#include <immintrin.h>

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/dot.h"

namespace pmpd::kernels {

namespace {

inline int code_at(const BitPlaneMatrix& m, int bits, int64_t r, int64_t j) {
  int code = 0;
  for (int k = 0; k < bits; ++k) code = (code << 1) | ((m.plane(k, r)[j >> 3] >> (j & 7)) & 1);
  return code;
}

// ---- AVX-512: 16 columns at a time; the codes are assembled in 32-bit lanes with one
// masked OR per plane, the weights looked up in registers (<= 32 entries) or gathered.
template <int B>
__attribute__((target("avx512f,avx512bw"))) float dot_avx512(const BitPlaneMatrix& m, int64_t r, const float* x) {
  alignas(64) float lut[1 << B];
  const uint16_t* t = m.table(B, r);
  if constexpr (B >= 4) {
    for (int i = 0; i < (1 << B); i += 16)
      _mm512_store_ps(lut + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i))));
  } else {
    for (int i = 0; i < (1 << B); ++i) lut[i] = f16_to_f32(t[i]);
  }
  __m512 lut0 = B <= 4 ? _mm512_setzero_ps() : _mm512_load_ps(lut), lut1 = _mm512_setzero_ps();
  if constexpr (B <= 4) {
    alignas(64) float pad[16] = {};
    std::memcpy(pad, lut, sizeof(float) << B);
    lut0 = _mm512_load_ps(pad);
  } else if constexpr (B == 5) {
    lut1 = _mm512_load_ps(lut + 16);
  }
  const uint16_t* pl[B];
  for (int k = 0; k < B; ++k) pl[k] = reinterpret_cast<const uint16_t*>(m.plane(k, r));
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const int64_t n16 = m.cols / 16;
  int64_t g = 0;
  auto step = [&](int64_t gi) __attribute__((target("avx512f,avx512bw"))) {
    __m512i code = _mm512_setzero_si512();
    for (int k = 0; k < B; ++k) code = _mm512_mask_or_epi32(code, __mmask16(pl[k][gi]), code, _mm512_set1_epi32(1 << (B - 1 - k)));
    __m512 w;
    if constexpr (B <= 4) w = _mm512_permutexvar_ps(code, lut0);
    else if constexpr (B == 5) w = _mm512_permutex2var_ps(lut0, code, lut1);
    else w = _mm512_i32gather_ps(code, lut, 4);
    return _mm512_mul_ps(w, _mm512_loadu_ps(x + gi * 16));
  };
  for (; g + 2 <= n16; g += 2) {
    acc0 = _mm512_add_ps(acc0, step(g));
    acc1 = _mm512_add_ps(acc1, step(g + 1));
  }
  if (g < n16) acc0 = _mm512_add_ps(acc0, step(g));
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (int64_t j = n16 * 16; j < m.cols; ++j) s += lut[code_at(m, B, r, j)] * x[j];
  return s;
}

using DotFn = float (*)(const BitPlaneMatrix&, int64_t, const float*);
constexpr DotFn kAvx512[9] = {nullptr, dot_avx512<1>, dot_avx512<2>, dot_avx512<3>, dot_avx512<4>,
                              dot_avx512<5>, dot_avx512<6>, dot_avx512<7>, dot_avx512<8>};

}  // namespace

void bitplane_dequant_row(const BitPlaneMatrix& m, int bits, int64_t r, float* out) {
  // Plane by plane over whole bytes (vectorisable), then one table look-up per column.
  std::vector<uint8_t> codes(static_cast<size_t>(m.plane_stride) * 8, 0);
  for (int k = 0; k < bits; ++k) {
    const uint8_t* p = m.plane(k, r);
    for (int64_t j = 0; j < m.plane_stride * 8; ++j) codes[size_t(j)] = uint8_t((codes[size_t(j)] << 1) | ((p[j >> 3] >> (j & 7)) & 1));
  }
  float lut[256];
  const uint16_t* t = m.table(bits, r);
  for (int c = 0; c < (1 << bits); ++c) lut[c] = f16_to_f32(t[c]);
  for (int64_t j = 0; j < m.cols; ++j) out[j] = lut[codes[size_t(j)]];
}

float bitplane_dot_scalar(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
  const uint16_t* t = m.table(bits, r);
  float s = 0;
  for (int64_t j = 0; j < m.cols; ++j) s += f16_to_f32(t[code_at(m, bits, r, j)]) * x[j];
  return s;
}

float bitplane_dot(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
  if (active_isa() == Isa::Avx512) return kAvx512[bits](m, r, x);
  return bitplane_dot_scalar(m, bits, r, x);
}

void bitplane_matmul(const BitPlaneMatrix& m, int bits, const float* X, int n_tokens, float* Y) {
  PMPD_CHECK(bits >= m.bits_min && bits <= m.bits_max, "{} bits requested; the weights hold {} to {}", bits,
             m.bits_min, m.bits_max);
  const int64_t rows = m.rows, cols = m.cols;
  if (n_tokens == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) Y[r] = bitplane_dot(m, bits, r, X);
    return;
  }
  // Prompt: dequantize each row once and reuse it for every token.
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      bitplane_dequant_row(m, bits, r, row.data());
      for (int t = 0; t < n_tokens; ++t) Y[int64_t(t) * rows + r] = dot(DType::F32, row.data(), X + int64_t(t) * cols, cols);
    }
  }
}

}  // namespace pmpd::kernels
