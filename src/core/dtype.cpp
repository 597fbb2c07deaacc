#include "core/dtype.h"

#include "core/arch.h"
#include "core/ggml_blocks.h"
#if defined(PMPD_X86)
#include <cpuid.h>
#include <immintrin.h>
#elif defined(PMPD_NEON)
#include <arm_neon.h>
#endif

#include <cmath>

namespace pmpd {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: return 1;
    case DType::I64: case DType::F64: return 8;
    default: return 0;
  }
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
    case DType::I16: return "I16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::F64: return "F64";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_1: return "Q4_1";
    case DType::Q5_0: return "Q5_0";
    case DType::Q5_1: return "Q5_1";
    case DType::Q8_0: return "Q8_0";
    case DType::Q2_K: return "Q2_K";
    case DType::Q3_K: return "Q3_K";
    case DType::Q4_K: return "Q4_K";
    case DType::Q5_K: return "Q5_K";
    case DType::Q6_K: return "Q6_K";
    default: return "unknown";
  }
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { mant <<= 1; ++e; } while (!(mant & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000;
  uint32_t abs = bits & 0x7fffffff;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00);  // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // overflow -> inf
  if (abs < 0x38800000u) {                                 // subnormal or zero
    if (abs < 0x33000000u) return uint16_t(sign);
    uint32_t mant = (abs & 0x7fffff) | 0x800000;
    int shift = 126 - int(abs >> 23);  // 14 + (113 - exp)
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = ((abs >> 13) - (112u << 10));
  uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
  return uint16_t(sign | half);
}

namespace {
#ifdef PMPD_X86
// Hardware conversion (F16C) for the hot paths: KV cache reads and row widening.
__attribute__((target("avx2,f16c"))) void f16_row_f16c(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
// Round to nearest even, as f32_to_f16 does (the hardware's overflow to infinity and its
// subnormals are the same); only a NaN's payload differs (f32_to_f16 keeps the sign and
// 0x7e00), so groups holding a NaN take the scalar path.
__attribute__((target("avx2,f16c"))) void f16_from_f32_f16c(const float* s, uint16_t* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(s + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0) {
      for (size_t j = i; j < i + 8; ++j) d[j] = f32_to_f16(s[j]);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) d[i] = f32_to_f16(s[i]);
}
const bool kHasF16c = [] {
  __builtin_cpu_init();
  return cpu_has_f16c() && __builtin_cpu_supports("avx2");
}();
#elif defined(PMPD_NEON)
// Every AArch64 core converts f16 in hardware (FCVTL), four at a time.
void f16_row_f16c(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(d + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
// FCVTN rounds as FPCR says, nearest even unless a program changed it; NaN groups as above.
void f16_from_f32_f16c(const float* s, uint16_t* d, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t x = vld1q_f32(s + i);
    if (vminvq_u32(vceqq_f32(x, x)) == 0) {  // a NaN among the four
      for (size_t j = i; j < i + 4; ++j) d[j] = f32_to_f16(s[j]);
      continue;
    }
    vst1_u16(d + i, vreinterpret_u16_f16(vcvt_f16_f32(x)));
  }
  for (; i < n; ++i) d[i] = f32_to_f16(s[i]);
}
constexpr bool kHasF16c = true;
#else
void f16_from_f32_f16c(const float* s, uint16_t* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(s[i]);
}
void f16_row_f16c(const uint16_t* s, float* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
constexpr bool kHasF16c = false;
#endif
}  // namespace

// CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c").
bool cpu_has_f16c() {
#ifdef PMPD_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
#else
  return false;
#endif
}

void f32_to_f16_row(const float* src, uint16_t* dst, size_t n) {
  if (kHasF16c) return f16_from_f32_f16c(src, dst, n);
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

void to_f32(DType t, const void* src, float* dst, size_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * 4); return;
    case DType::F16: {
      auto* s = static_cast<const uint16_t*>(src);
      if (kHasF16c) return f16_row_f16c(s, dst, n);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::F64: {
      auto* s = static_cast<const double*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
      return;
    }
    default:
      if (is_block_type(t)) return dequantize_ggml_blocks(t, src, dst, n);
      for (size_t i = 0; i < n; ++i) dst[i] = NAN;
  }
}

}  // namespace pmpd

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/tensor.h"
namespace pmpd {
std::string shape_str(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }
}  // namespace pmpd
