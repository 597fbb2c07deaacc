#include "kernels/cpu/exp.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/arch.h"
#include "kernels/cpu/dot.h"
#if defined(PMPD_X86)
#include <immintrin.h>
#endif

// Built with -ffp-contract=off: the fused multiply-adds below are the algorithm's own (the ones
// glibc's FMA build makes); no other product may be fused.

namespace pmpd::kernels {

namespace {

constexpr double kInvLn2N = 0x1.71547652b82fep+5;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;               // adding it rounds to an integer
constexpr double kC0 = 0x1.c6af84b912394p-20, kC1 = 0x1.ebfce50fac4f3p-13, kC2 = 0x1.62e42ff0c52d6p-6;
// Bits of 2^(i/32), less i << 47 (added back with k's bits: k's integer part lands in the exponent).
constexpr uint64_t kTable[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
constexpr float kOverflow = 0x1.62e42ep6f;    // above: +inf
constexpr float kUnderflow = -0x1.9fe368p6f;  // below: +0

}  // namespace

namespace {

// The formula for one float; std::fma is one instruction where the target has FMA and a libm
// call (the same correctly rounded result) where it has not.
inline float exp_one(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if (((bits >> 20) & 0x7ff) >= 0x42b) {  // |x| >= 88, inf or NaN
    if (x != x) return x + x;
    if (x > kOverflow) return INFINITY;
    if (x < kUnderflow) return 0.f;
  }
  const double xd = x;
  double kd = std::fma(kInvLn2N, xd, kShift);
  uint64_t ki;
  std::memcpy(&ki, &kd, 8);
  kd -= kShift;
  const double r = std::fma(kInvLn2N, xd, -kd);
  const uint64_t t = kTable[ki % 32] + (ki << 47);
  double s;
  std::memcpy(&s, &t, 8);
  const double z = std::fma(kC0, r, kC1), r2 = r * r;
  double y = std::fma(kC2, r, 1.0);
  y = std::fma(z, r2, y);
  return float(y * s);
}

#if defined(PMPD_X86)
__attribute__((target("fma"))) float exp_one_fma(float x) { return exp_one(x); }
const bool kHasFma = (__builtin_cpu_init(), __builtin_cpu_supports("fma"));
#endif

}  // namespace

float exp_scalar(float x) {
#if defined(PMPD_X86)
  if (kHasFma) return exp_one_fma(x);
#endif
  return exp_one(x);
}

#if defined(PMPD_X86)
// GCC 12 reports the AVX-512 intrinsics' own placeholder registers (_mm512_undefined_*) as
// maybe uninitialized when they are inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

__attribute__((target("avx512f"))) __m256 exp8_avx512(__m256 x, const __m512i* tab) {
  const __m512d xd = _mm512_cvtps_pd(x);
  __m512d kd = _mm512_fmadd_pd(_mm512_set1_pd(kInvLn2N), xd, _mm512_set1_pd(kShift));
  const __m512i ki = _mm512_castpd_si512(kd);
  kd = _mm512_sub_pd(kd, _mm512_set1_pd(kShift));
  const __m512d r = _mm512_fmsub_pd(_mm512_set1_pd(kInvLn2N), xd, kd);
  const __m512i idx = _mm512_and_si512(ki, _mm512_set1_epi64(31));
  const __m512i lo = _mm512_permutex2var_epi64(tab[0], idx, tab[1]);
  const __m512i hi = _mm512_permutex2var_epi64(tab[2], idx, tab[3]);
  __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(idx, _mm512_set1_epi64(16)), lo, hi);
  t = _mm512_add_epi64(t, _mm512_slli_epi64(ki, 47));
  const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(kC0), r, _mm512_set1_pd(kC1));
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(_mm512_set1_pd(kC2), r, _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(y, _mm512_castsi512_pd(t)));
}

// Inputs past the formula's range: +inf above, +0 below, NaN stays NaN (x + x, as libm).
__attribute__((target("avx512f"))) __m512 exp16_avx512(__m512 x, const __m512i* tab) {
  const __m256 lo = exp8_avx512(_mm512_castps512_ps256(x), tab);
  const __m256 hi = exp8_avx512(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)), tab);
  __m512 y = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
  y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(kOverflow), _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
  y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(kUnderflow), _CMP_LT_OQ), _mm512_setzero_ps());
  return _mm512_mask_add_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x, x);
}

__attribute__((target("avx512f"))) void exp_avx512(float* x, int n) {
  __m512i tab[4];
  for (int i = 0; i < 4; ++i) tab[i] = _mm512_loadu_si512(kTable + 8 * i);
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, exp16_avx512(_mm512_loadu_ps(x + i), tab));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, m, exp16_avx512(_mm512_maskz_loadu_ps(m, x + i), tab));
  }
}

__attribute__((target("avx2,fma"))) __m128 exp4_avx2(__m128 x) {
  const __m256d xd = _mm256_cvtps_pd(x);
  __m256d kd = _mm256_fmadd_pd(_mm256_set1_pd(kInvLn2N), xd, _mm256_set1_pd(kShift));
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, _mm256_set1_pd(kShift));
  const __m256d r = _mm256_fmsub_pd(_mm256_set1_pd(kInvLn2N), xd, kd);
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  __m256i t = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTable), idx, 8);
  t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
  const __m256d z = _mm256_fmadd_pd(_mm256_set1_pd(kC0), r, _mm256_set1_pd(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(kC2), r, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, _mm256_castsi256_pd(t)));
}

__attribute__((target("avx2,fma"))) __m256 exp8_avx2(__m256 x) {
  __m256 y = _mm256_set_m128(exp4_avx2(_mm256_extractf128_ps(x, 1)), exp4_avx2(_mm256_castps256_ps128(x)));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(kOverflow), _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(kUnderflow), _CMP_LT_OQ));
  return _mm256_blendv_ps(y, _mm256_add_ps(x, x), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma"))) void exp_avx2(float* x, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8_avx2(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float tail[8] = {};
    std::memcpy(tail, x + i, size_t(n - i) * 4);
    _mm256_storeu_ps(tail, exp8_avx2(_mm256_loadu_ps(tail)));
    std::memcpy(x + i, tail, size_t(n - i) * 4);
  }
}

}  // namespace
#pragma GCC diagnostic pop
#endif

void exp_inplace(float* x, int n) {
#if defined(PMPD_X86)
  if (active_isa() == Isa::Avx512) return exp_avx512(x, n);
  if (active_isa() == Isa::Avx2) return exp_avx2(x, n);
#endif
  for (int i = 0; i < n; ++i) x[i] = exp_scalar(x[i]);
}

}  // namespace pmpd::kernels
