// Element types of tensors in checkpoint files and the conversions between them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace pmpd {

// Q4_0 .. Q6_K are llama.cpp's block-quantized types (core/ggml_blocks.h): a row is a run of
// blocks of block_elems(t) elements, block_bytes(t) bytes each, so they have no element size.
enum class DType : uint8_t {
  F32, F16, BF16, I8, I16, I32, I64, U8, F64,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
  Unknown
};

size_t dtype_size(DType t);  // 0 for block types and Unknown
std::string_view dtype_name(DType t);

inline bool is_block_type(DType t) { return t >= DType::Q4_0 && t <= DType::Q6_K; }
// Elements a block: 1 for element types.
inline int64_t block_elems(DType t) {
  if (!is_block_type(t)) return 1;
  return t >= DType::Q2_K ? 256 : 32;
}
// Bytes a block (ggml-common.h's block_q4_0 .. block_q6_k): dtype_size for element types.
inline size_t block_bytes(DType t) {
  switch (t) {
    case DType::Q4_0: return 18;
    case DType::Q4_1: return 20;
    case DType::Q5_0: return 22;
    case DType::Q5_1: return 24;
    case DType::Q8_0: return 34;
    case DType::Q2_K: return 84;
    case DType::Q3_K: return 110;
    case DType::Q4_K: return 144;
    case DType::Q5_K: return 176;
    case DType::Q6_K: return 210;
    default: return dtype_size(t);
  }
}
// Bytes of n elements (n a multiple of block_elems(t)).
inline size_t dtype_bytes(DType t, int64_t n) { return size_t(n / block_elems(t)) * block_bytes(t); }

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

// Converts n elements of type t at src to f32 (for a block type, n whole blocks' worth).
void to_f32(DType t, const void* src, float* dst, size_t n);

}  // namespace pmpd
