// Element types of tensors in checkpoint files and the conversions between them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace pmpd {

enum class DType : uint8_t { F32, F16, BF16, I8, I16, I32, I64, U8, F64, Unknown };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// n floats to f16, each element the bits f32_to_f16 gives (F16C or NEON where the CPU has
// it: the KV cache stores two rows a layer every token).
void f32_to_f16_row(const float* src, uint16_t* dst, size_t n);

// Whether the CPU converts f16 in hardware (F16C).
bool cpu_has_f16c();

// Converts n elements of type t at src to f32.
void to_f32(DType t, const void* src, float* dst, size_t n);

}  // namespace pmpd
