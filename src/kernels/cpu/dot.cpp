#include "kernels/cpu/dot.h"

#include <immintrin.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace pmpd::kernels {

namespace {

float dot_f32_scalar(const float* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += w[i] * x[i];
  return s;
}
float dot_f16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}
float dot_bf16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

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
PMPD_AVX2 float dot_avx2(const W* w, const float* x, int64_t n) {
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
  if constexpr (T == DType::F32) return s + dot_f32_scalar(w + i, x + i, n - i);
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
PMPD_AVX512 float dot_avx512(const W* w, const float* x, int64_t n) {
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
  if constexpr (T == DType::F32) return s + dot_f32_scalar(w + i, x + i, n - i);
  else if constexpr (T == DType::F16) return s + dot_f16_scalar(w + i, x + i, n - i);
  else return s + dot_bf16_scalar(w + i, x + i, n - i);
}

Isa detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    return Isa::Avx2;
  return Isa::Scalar;
}

Isa initial_isa() {
  Isa best = detect();
  if (const char* e = std::getenv("PMPD_ISA")) {
    std::string s = e;
    Isa want = s == "scalar" ? Isa::Scalar : s == "avx2" ? Isa::Avx2 : Isa::Avx512;
    if (int(want) < int(best)) return want;
  }
  return best;
}

Isa g_isa = initial_isa();

}  // namespace

Isa active_isa() { return g_isa; }
void set_isa(Isa isa) { g_isa = int(isa) <= int(detect()) ? isa : detect(); }
const char* isa_name(Isa isa) { return isa == Isa::Avx512 ? "avx512" : isa == Isa::Avx2 ? "avx2" : "scalar"; }

float dot_scalar(DType t, const void* row, const float* x, int64_t n) {
  switch (t) {
    case DType::F32: return dot_f32_scalar(static_cast<const float*>(row), x, n);
    case DType::F16: return dot_f16_scalar(static_cast<const uint16_t*>(row), x, n);
    case DType::BF16: return dot_bf16_scalar(static_cast<const uint16_t*>(row), x, n);
    default: fail("dot: unsupported weight dtype {}", dtype_name(t));
  }
}

float dot(DType t, const void* row, const float* x, int64_t n) {
  auto* h = static_cast<const uint16_t*>(row);
  switch (g_isa) {
    case Isa::Avx512:
      if (t == DType::F32) return dot_avx512<DType::F32>(static_cast<const float*>(row), x, n);
      if (t == DType::F16) return dot_avx512<DType::F16>(h, x, n);
      if (t == DType::BF16) return dot_avx512<DType::BF16>(h, x, n);
      break;
    case Isa::Avx2:
      if (t == DType::F32) return dot_avx2<DType::F32>(static_cast<const float*>(row), x, n);
      if (t == DType::F16) return dot_avx2<DType::F16>(h, x, n);
      if (t == DType::BF16) return dot_avx2<DType::BF16>(h, x, n);
      break;
    default: break;
  }
  return dot_scalar(t, row, x, n);
}

void matmul(const TensorView& W, const float* X, int n_tokens, float* Y) {
  const int64_t rows = W.rows(), cols = W.cols();
  const DType t = W.dtype;
  if (n_tokens == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) Y[r] = dot(t, W.row_ptr(r), X, cols);
    return;
  }
  // Several tokens: widen each row to f32 once, then reuse it for every token.
#pragma omp parallel
  {
    std::vector<float> row(size_t(t == DType::F32 ? 0 : cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* w = reinterpret_cast<const float*>(W.row_ptr(r));
      if (t != DType::F32) {
        to_f32(t, W.row_ptr(r), row.data(), size_t(cols));
        w = row.data();
      }
      for (int tok = 0; tok < n_tokens; ++tok)
        Y[int64_t(tok) * rows + r] = dot(DType::F32, w, X + int64_t(tok) * cols, cols);
    }
  }
}

}  // namespace pmpd::kernels
