#include "kernels/cpu/attention.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/dot.h"
#include "kernels/cpu/dot_simd.h"
#include "kernels/cpu/ops.h"

// This file is compiled with -ffp-contract=off: the value sums must stay a rounded product
// then a rounded sum (add_scaled_f16's arithmetic), never a fused multiply-add.

namespace pmpd::kernels {

void attend_f16_per_row(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len, int hd,
                        float scale, float* scores, float* out) {
  for (int p = 0; p < len; ++p) scores[p] = dot(DType::F16, keys + p * stride, q, hd) * scale;
  softmax(scores, len);
  std::fill(out, out + hd, 0.f);
  for (int p = 0; p < len; ++p) add_scaled_f16(out, scores[p], values + p * stride, hd);
}

namespace {

#ifdef PMPD_X86
// out[c .. c + 16 * V) = sum over p of scores[p] * v_p[c ..], V vectors held in registers.
template <int V>
PMPD_AVX512 void sum_values_avx512(const float* scores, const uint16_t* values, int64_t stride, int len, float* out) {
  __m512 acc[V];
  for (int j = 0; j < V; ++j) acc[j] = _mm512_setzero_ps();
  for (int p = 0; p < len; ++p) {
    const __m512 w = _mm512_set1_ps(scores[p]);
    const uint16_t* v = values + p * stride;
    for (int j = 0; j < V; ++j)
      acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(w, simd::load16(v + 16 * j, false)));
  }
  for (int j = 0; j < V; ++j) _mm512_storeu_ps(out + 16 * j, acc[j]);
}

PMPD_AVX512 void attend_avx512(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len,
                               int hd, float scale, float* scores, float* out) {
  for (int p = 0; p < len; ++p) scores[p] = simd::dot_avx512<DType::F16>(keys + p * stride, q, hd) * scale;
  softmax(scores, len);
  // Columns in slices of at most 64 (four registers), each slice one pass over the rows.
  for (int c = 0; c < hd; c += 64) {
    switch (std::min(hd - c, 64) / 16) {
      case 1: sum_values_avx512<1>(scores, values + c, stride, len, out + c); break;
      case 2: sum_values_avx512<2>(scores, values + c, stride, len, out + c); break;
      case 3: sum_values_avx512<3>(scores, values + c, stride, len, out + c); break;
      default: sum_values_avx512<4>(scores, values + c, stride, len, out + c); break;
    }
  }
}

template <int V>
PMPD_AVX2 void sum_values_avx2(const float* scores, const uint16_t* values, int64_t stride, int len, float* out) {
  __m256 acc[V];
  for (int j = 0; j < V; ++j) acc[j] = _mm256_setzero_ps();
  for (int p = 0; p < len; ++p) {
    const __m256 w = _mm256_set1_ps(scores[p]);
    const uint16_t* v = values + p * stride;
    for (int j = 0; j < V; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(w, simd::load8(v + 8 * j, false)));
  }
  for (int j = 0; j < V; ++j) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

PMPD_AVX2 void attend_avx2(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len,
                           int hd, float scale, float* scores, float* out) {
  for (int p = 0; p < len; ++p) scores[p] = simd::dot_avx2<DType::F16>(keys + p * stride, q, hd) * scale;
  softmax(scores, len);
  // Slices of 32 or 16 columns (four or two registers; hd is a multiple of 16).
  for (int c = 0; c < hd; c += 32) {
    if (hd - c >= 32) sum_values_avx2<4>(scores, values + c, stride, len, out + c);
    else sum_values_avx2<2>(scores, values + c, stride, len, out + c);
  }
}
#endif

}  // namespace

void attend_f16(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len, int hd,
                float scale, float* scores, float* out) {
  PMPD_CHECK(hd % 16 == 0 && hd > 0, "attend_f16: head size {} is not a multiple of 16", hd);
  switch (active_isa()) {
#ifdef PMPD_X86
    case Isa::Avx512: return attend_avx512(q, keys, values, stride, len, hd, scale, scores, out);
    case Isa::Avx2: return attend_avx2(q, keys, values, stride, len, hd, scale, scores, out);
#endif
    default: return attend_f16_per_row(q, keys, values, stride, len, hd, scale, scores, out);
  }
}

}  // namespace pmpd::kernels
