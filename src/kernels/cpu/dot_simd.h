// The vector bodies of dot(): the scalar references and the AVX2, AVX-512 and NEON
// kernels, as inline templates so that loops over many rows (a one-token product, a
// decode step's attention scores) can run them without a call and dispatch per row and
// still get dot()'s bits. Internal to the CPU kernels.
#pragma once
#include "core/arch.h"
#if defined(PMPD_X86)
#include <immintrin.h>
#elif defined(PMPD_NEON)
#include <arm_neon.h>
#endif

#include <cmath>
#include <cstdint>

#include "core/dtype.h"

// Internal linkage: each file that includes this compiles its own copies with its own flags
// (attention.cpp is built with -ffp-contract=off), so the linker never swaps one file's
// copy of a template for another's.
namespace pmpd::kernels::simd {
namespace {

inline float dot_f32_scalar(const float* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += w[i] * x[i];
  return s;
}
// The vector kernels' f32 tail (n % vector width columns): fused multiply-adds, which
// round the same wherever they run, so dot() and the tiles agree bit for bit whether or
// not the compiler inlines the tail and contracts its products.
inline float dot_f32_tail(const float* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s = std::fma(w[i], x[i], s);
  return s;
}
inline float dot_f16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}
inline float dot_bf16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

#ifdef PMPD_X86
// ---- AVX2 + FMA + F16C ----
#define PMPD_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PMPD_AVX512 __attribute__((target("avx512f")))

PMPD_AVX2 inline float hsum256(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// Loads 8 weights as f32.
PMPD_AVX2 inline __m256 load8(const float* w) { return _mm256_loadu_ps(w); }
PMPD_AVX2 inline __m256 load8(const uint16_t* w, bool bf16) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  if (!bf16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <DType T, typename W>
PMPD_AVX2 inline float dot_avx2(const W* w, const float* x, int64_t n) {
  auto ld = [](const W* p) PMPD_AVX2 {
    if constexpr (T == DType::F32) return load8(p);
    else return load8(p, T == DType::BF16);
  };
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(ld(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(ld(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(ld(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(ld(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(ld(w + i), _mm256_loadu_ps(x + i), a0);
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  if constexpr (T == DType::F32) return s + dot_f32_tail(w + i, x + i, n - i);
  else if constexpr (T == DType::F16) return s + dot_f16_scalar(w + i, x + i, n - i);
  else return s + dot_bf16_scalar(w + i, x + i, n - i);
}

// ---- AVX-512F ----
PMPD_AVX512 inline __m512 load16(const float* w) { return _mm512_loadu_ps(w); }
PMPD_AVX512 inline __m512 load16(const uint16_t* w, bool bf16) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  if (!bf16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <DType T, typename W>
PMPD_AVX512 inline float dot_avx512(const W* w, const float* x, int64_t n) {
  auto ld = [](const W* p) PMPD_AVX512 {
    if constexpr (T == DType::F32) return load16(p);
    else return load16(p, T == DType::BF16);
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(ld(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(ld(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(ld(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(ld(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(ld(w + i), _mm512_loadu_ps(x + i), a0);
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  if constexpr (T == DType::F32) return s + dot_f32_tail(w + i, x + i, n - i);
  else if constexpr (T == DType::F16) return s + dot_f16_scalar(w + i, x + i, n - i);
  else return s + dot_bf16_scalar(w + i, x + i, n - i);
}

#endif  // PMPD_X86

#ifdef PMPD_NEON
// ---- NEON (every AArch64 core): four accumulators of 4 floats, each taking every fourth
// vector, as the x86 kernels do.
inline float32x4_t load4(const float* w) { return vld1q_f32(w); }
inline float32x4_t load4(const uint16_t* w, bool bf16) {
  const uint16x4_t h = vld1_u16(w);
  if (!bf16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
  return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

template <DType T, typename W>
inline float dot_neon(const W* w, const float* x, int64_t n) {
  auto ld = [](const W* p) {
    if constexpr (T == DType::F32) return load4(p);
    else return load4(p, T == DType::BF16);
  };
  float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = vfmaq_f32(a0, ld(w + i), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, ld(w + i + 4), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, ld(w + i + 8), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, ld(w + i + 12), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, ld(w + i), vld1q_f32(x + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  if constexpr (T == DType::F32) return s + dot_f32_tail(w + i, x + i, n - i);
  else if constexpr (T == DType::F16) return s + dot_f16_scalar(w + i, x + i, n - i);
  else return s + dot_bf16_scalar(w + i, x + i, n - i);
}
#endif

}  // namespace
}  // namespace pmpd::kernels::simd
