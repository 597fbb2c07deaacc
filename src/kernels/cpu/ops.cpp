#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "core/arch.h"
#include "core/dtype.h"
#include "kernels/cpu/dot.h"
#include "kernels/cpu/exp.h"

#ifdef PMPD_X86
#include <immintrin.h>
#endif

namespace pmpd::kernels {

void rmsnorm(float* out, const float* x, const float* w, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  float scale = float(1.0 / std::sqrt(ss / n + eps));
  for (int i = 0; i < n; ++i) out[i] = w[i] * (x[i] * scale);
}

void layernorm(float* out, const float* x, const float* w, const float* b, int n, float eps) {
  double mean = 0;
  for (int i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  double var = 0;
  for (int i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= n;
  float inv = float(1.0 / std::sqrt(var + eps));
  for (int i = 0; i < n; ++i) {
    float v = float(x[i] - mean) * inv;
    out[i] = v * (w ? w[i] : 1.f) + (b ? b[i] : 0.f);
  }
}

RopeTable::RopeTable(int rotary_dim, float theta) {
  for (int i = 0; i < rotary_dim / 2; ++i)
    inv_freq.push_back(1.0f / std::pow(theta, float(2 * i) / float(rotary_dim)));
}

void rope(float* x, int n_heads, int head_dim, int rotary_dim, int pos, const RopeTable& t, bool interleaved) {
  const int half = rotary_dim / 2;
  for (int i = 0; i < half; ++i) {
    float angle = float(pos) * t.inv_freq[i];
    float c = std::cos(angle), s = std::sin(angle);
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim;
      int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
      float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x1 * c + x0 * s;
    }
  }
}

void softmax(float* x, int n) {
  const float m = *std::max_element(x, x + n);
  for (int i = 0; i < n; ++i) x[i] -= m;
  exp_inplace(x, n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += x[i];
  const float inv = float(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void silu(float* x, int n) {
  float e[256];
  for (int i0 = 0; i0 < n; i0 += 256) {
    const int len = std::min(256, n - i0);
    for (int i = 0; i < len; ++i) e[i] = -x[i0 + i];
    exp_inplace(e, len);
    for (int i = 0; i < len; ++i) x[i0 + i] = x[i0 + i] / (1.f + e[i]);
  }
}

void gelu_tanh(float* x, int n) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  for (int i = 0; i < n; ++i) {
    float v = x[i];
    x[i] = 0.5f * v * (1.f + std::tanh(k * (v + 0.044715f * v * v * v)));
  }
}

void add(float* x, const float* y, int n) {
  for (int i = 0; i < n; ++i) x[i] += y[i];
}

namespace {
// The portable form: widen, then multiply and add element by element.
void add_scaled_widened(float* o, float w, const uint16_t* v, int n) {
  float row[64];
  for (int i0 = 0; i0 < n; i0 += 64) {
    const int len = std::min(64, n - i0);
    to_f32(DType::F16, v + i0, row, size_t(len));
    for (int i = 0; i < len; ++i) o[i0 + i] += w * row[i];
  }
}
#ifdef PMPD_X86
// Separate multiply and add (no FMA): the rounding of the portable loop on x86-64, whose
// baseline has no FMA to contract it into.
__attribute__((target("avx2,f16c"))) void add_scaled_f16c(float* o, float w, const uint16_t* v, int n) {
  const __m256 wv = _mm256_set1_ps(w);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    _mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_loadu_ps(o + i), _mm256_mul_ps(wv, x)));
  }
  if (i < n) add_scaled_widened(o + i, w, v + i, n - i);
}
#endif
}  // namespace

void add_scaled_f16(float* o, float w, const uint16_t* v, int n) {
#ifdef PMPD_X86
  // The AVX2 and AVX-512 levels both imply AVX2 + F16C (dot.cpp's detection).
  if (active_isa() == Isa::Avx2 || active_isa() == Isa::Avx512) return add_scaled_f16c(o, w, v, n);
#endif
  add_scaled_widened(o, w, v, n);
}

}  // namespace pmpd::kernels
