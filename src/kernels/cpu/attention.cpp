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

// Positions a group's heads take in turn: 32 rows of a 128-wide head are 8 KB of keys.
// One head takes the whole cache at once (nothing to share).
constexpr int kGroupBlock = 32;

#ifdef PMPD_X86
// out[0 .. 16 * V) (+)= sum over the block's positions of w_p * v_p[0 ..], V vectors held in
// registers; `first`: the sum starts at zero, else at out (stored by the block before,
// which rounds nothing: the registers hold floats).
template <int V>
PMPD_AVX512 void sum_values_avx512(const float* w, const uint16_t* values, int64_t stride, int n, bool first,
                                   float* out) {
  __m512 acc[V];
  for (int j = 0; j < V; ++j) acc[j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(out + 16 * j);
  for (int p = 0; p < n; ++p) {
    const __m512 wp = _mm512_set1_ps(w[p]);
    const uint16_t* v = values + p * stride;
    for (int j = 0; j < V; ++j) acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(wp, simd::load16(v + 16 * j, false)));
  }
  for (int j = 0; j < V; ++j) _mm512_storeu_ps(out + 16 * j, acc[j]);
}

template <int V>
PMPD_AVX2 void sum_values_avx2(const float* w, const uint16_t* values, int64_t stride, int n, bool first, float* out) {
  __m256 acc[V];
  for (int j = 0; j < V; ++j) acc[j] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(out + 8 * j);
  for (int p = 0; p < n; ++p) {
    const __m256 wp = _mm256_set1_ps(w[p]);
    const uint16_t* v = values + p * stride;
    for (int j = 0; j < V; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(wp, simd::load8(v + 8 * j, false)));
  }
  for (int j = 0; j < V; ++j) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

// The walk shared by both ISAs: scores block by block (each head of the group in turn),
// the softmax of each head, then the value sums slice by slice of columns, block by block.
// Dot(k, q) is the ISA's inlined dot; Sum(w, v, n, first, out, width) sums one slice.
// Always inlined into the ISA's function, so that Dot and Sum inline into it too.
template <class Dot, class Sum>
[[gnu::always_inline]] inline void attend_blocks(const float* q, int heads, const uint16_t* keys,
                                                 const uint16_t* values, int64_t stride, int len, int hd, float scale,
                                                 float* scores, float* out, int slice, Dot dot, Sum sum) {
  const int block = heads == 1 ? len : kGroupBlock;
  for (int p0 = 0; p0 < len; p0 += block) {
    const int p1 = std::min(len, p0 + block);
    for (int g = 0; g < heads; ++g)
      for (int p = p0; p < p1; ++p) scores[g * len + p] = dot(keys + p * stride, q + g * hd) * scale;
  }
  for (int g = 0; g < heads; ++g) softmax(scores + g * len, len);
  for (int c = 0; c < hd; c += slice) {
    const int width = std::min(slice, hd - c);
    for (int p0 = 0; p0 < len; p0 += block) {
      const int n = std::min(len, p0 + block) - p0;
      for (int g = 0; g < heads; ++g)
        sum(scores + g * len + p0, values + p0 * stride + c, n, p0 == 0, out + g * hd + c, width);
    }
  }
}

PMPD_AVX512 void attend_avx512(const float* q, int heads, const uint16_t* keys, const uint16_t* values,
                               int64_t stride, int len, int hd, float scale, float* scores, float* out) {
  auto dot = [hd](const uint16_t* k, const float* qh) PMPD_AVX512 { return simd::dot_avx512<DType::F16>(k, qh, hd); };
  // Slices of at most 64 columns (four registers).
  auto sum = [stride](const float* w, const uint16_t* v, int n, bool first, float* o, int width) PMPD_AVX512 {
    switch (width / 16) {
      case 1: return sum_values_avx512<1>(w, v, stride, n, first, o);
      case 2: return sum_values_avx512<2>(w, v, stride, n, first, o);
      case 3: return sum_values_avx512<3>(w, v, stride, n, first, o);
      default: return sum_values_avx512<4>(w, v, stride, n, first, o);
    }
  };
  attend_blocks(q, heads, keys, values, stride, len, hd, scale, scores, out, 64, dot, sum);
}

PMPD_AVX2 void attend_avx2(const float* q, int heads, const uint16_t* keys, const uint16_t* values, int64_t stride,
                           int len, int hd, float scale, float* scores, float* out) {
  auto dot = [hd](const uint16_t* k, const float* qh) PMPD_AVX2 { return simd::dot_avx2<DType::F16>(k, qh, hd); };
  // Slices of 32 or 16 columns (four or two registers; hd is a multiple of 16).
  auto sum = [stride](const float* w, const uint16_t* v, int n, bool first, float* o, int width) PMPD_AVX2 {
    if (width == 32) return sum_values_avx2<4>(w, v, stride, n, first, o);
    return sum_values_avx2<2>(w, v, stride, n, first, o);
  };
  attend_blocks(q, heads, keys, values, stride, len, hd, scale, scores, out, 32, dot, sum);
}
#endif

}  // namespace

void attend_f16(const float* q, int heads, const uint16_t* keys, const uint16_t* values, int64_t stride, int len,
                int hd, float scale, float* scores, float* out) {
  PMPD_CHECK(hd % 16 == 0 && hd > 0, "attend_f16: head size {} is not a multiple of 16", hd);
  switch (active_isa()) {
#ifdef PMPD_X86
    case Isa::Avx512: return attend_avx512(q, heads, keys, values, stride, len, hd, scale, scores, out);
    case Isa::Avx2: return attend_avx2(q, heads, keys, values, stride, len, hd, scale, scores, out);
#endif
    default:
      for (int g = 0; g < heads; ++g)
        attend_f16_per_row(q + g * hd, keys, values, stride, len, hd, scale, scores + g * len, out + g * hd);
  }
}

}  // namespace pmpd::kernels
