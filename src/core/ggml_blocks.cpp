#include "core/ggml_blocks.h"

#include <cstdint>

#include "core/error.h"

// Built with -ffp-contract=off (CMakeLists.txt): every scale product and offset is rounded
// on its own, as gguf-py's float32 arrays round them, so the values match bit for bit.

namespace pmpd {

namespace {

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
float f16_at(const uint8_t* p) { return f16_to_f32(u16(p)); }

// Q4_0: f16 d, 16 bytes; element i < 16 is the low nibble of byte i, i >= 16 the high nibble
// of byte i - 16; value d (q - 8).
void q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * float((b[2 + i] & 15) - 8);
    y[i + 16] = d * float((b[2 + i] >> 4) - 8);
  }
}

// Q4_1: f16 d, f16 m, 16 bytes as Q4_0; value d q + m.
void q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * float(b[4 + i] & 15) + m;
    y[i + 16] = d * float(b[4 + i] >> 4) + m;
  }
}

// Q5_0 / Q5_1: the fifth bit of element i is bit i of a little-endian u32 before the nibbles.
uint32_t high_bits(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

void q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint32_t h = high_bits(b + 2);
  const uint8_t* qs = b + 6;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * float(int((qs[i] & 15) | ((h >> i & 1) << 4)) - 16);
    y[i + 16] = d * float(int((qs[i] >> 4) | ((h >> (i + 16) & 1) << 4)) - 16);
  }
}

void q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint32_t h = high_bits(b + 4);
  const uint8_t* qs = b + 8;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * float((qs[i] & 15) | ((h >> i & 1) << 4)) + m;
    y[i + 16] = d * float((qs[i] >> 4) | ((h >> (i + 16) & 1) << 4)) + m;
  }
}

// Q8_0: f16 d, 32 signed bytes; value q d.
void q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int i = 0; i < 32; ++i) y[i] = float(int8_t(b[2 + i])) * d;
}

// Q2_K (256 elements): 16 scale bytes (low nibble scale, high nibble min of each 16-element
// group), 64 bytes of 2-bit codes, f16 d, f16 dmin. Element 128 h + 32 j + l is bits 2j..2j+1
// of byte 32 h + l; value (d sc) q - (dmin m).
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* sc = b;
  const uint8_t* qs = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = e % 128 / 32, l = e % 32, g = e / 16;
    const float dl = d * float(sc[g] & 15), ml = dmin * float(sc[g] >> 4);
    y[e] = dl * float(qs[32 * h + l] >> (2 * j) & 3) - ml;
  }
}

// Q3_K: 32 bytes of high-bit masks, 64 bytes of 2-bit codes (ordered as Q2_K's), 12 bytes of
// sixteen 6-bit scales, f16 d. Scale g: low 4 bits from byte g % 8 (nibble g / 8), high 2 bits
// from byte 8 + g % 4 (bits 2 (g / 4)); minus 32. Element e's high bit is bit e / 32 of mask
// byte e % 32; a clear bit subtracts 4. Value (d scale) q.
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* s = b + 96;
  const float d = f16_at(b + 108);
  float dl[16];
  for (int g = 0; g < 16; ++g) {
    const int lo = s[g % 8] >> (4 * (g / 8)) & 15, hi = s[8 + g % 4] >> (2 * (g / 4)) & 3;
    dl[g] = d * float((lo | hi << 4) - 32);
  }
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = e % 128 / 32, l = e % 32;
    const int low = qs[32 * h + l] >> (2 * j) & 3, high = hmask[l] >> (e / 32) & 1;
    y[e] = dl[e / 16] * float(low - (high ? 0 : 4));
  }
}

// Q4_K / Q5_K's eight 6-bit scales and mins in 12 bytes: sub-block j < 4 has scale
// s[j] & 63 and min s[j + 4] & 63; j >= 4 has scale (s[j + 4] & 15) | (s[j - 4] >> 6) << 4 and
// min (s[j + 4] >> 4) | (s[j] >> 6) << 4.
void k_scales(const uint8_t* s, int j, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    min = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

// Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles: sub-block j (32 elements) is
// the low (j even) or high (j odd) nibbles of bytes 32 (j / 2) ... +31. Value (d sc) q - (dmin m).
void q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k_scales(b + 4, j, sc, m);
    const float dd = d * float(sc), dm = dmin * float(m);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = dd * float(qs[32 * (j / 2) + l] >> (4 * (j % 2)) & 15) - dm;
  }
}

// Q5_K: Q4_K with 32 bytes of fifth bits before the nibbles: bit j of byte l for element 32 j + l.
void q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k_scales(b + 4, j, sc, m);
    const float dd = d * float(sc), dm = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2)) & 15) | (qh[l] >> j & 1) << 4;
      y[32 * j + l] = dd * float(q) - dm;
    }
  }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed scales, f16 d.
// Element 128 h + 64 s + m (m < 64) has low nibble s of byte 64 h + m; element 128 h + 32 k + l
// has high bits 2k..2k+1 of byte 64 + 32 h + l; minus 32. Value (d scale[e / 16]) q.
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128;
    const int low = ql[64 * h + r % 64] >> (4 * (r / 64)) & 15;
    const int high = qh[32 * h + r % 32] >> (2 * (r / 32)) & 3;
    y[e] = (d * float(sc[e / 16])) * float((low | high << 4) - 32);
  }
}

}  // namespace

void dequantize_ggml_blocks(DType t, const void* src, float* dst, size_t n) {
  const auto per = size_t(block_elems(t));
  PMPD_CHECK(is_block_type(t) && n % per == 0, "dequantize: {} elements are not whole {} blocks of {}", n,
             dtype_name(t), per);
  void (*decode)(const uint8_t*, float*) = nullptr;
  switch (t) {
    case DType::Q4_0: decode = q4_0; break;
    case DType::Q4_1: decode = q4_1; break;
    case DType::Q5_0: decode = q5_0; break;
    case DType::Q5_1: decode = q5_1; break;
    case DType::Q8_0: decode = q8_0; break;
    case DType::Q2_K: decode = q2_k; break;
    case DType::Q3_K: decode = q3_k; break;
    case DType::Q4_K: decode = q4_k; break;
    case DType::Q5_K: decode = q5_k; break;
    case DType::Q6_K: decode = q6_k; break;
    default: break;
  }
  const auto* b = static_cast<const uint8_t*>(src);
  const size_t bytes = block_bytes(t);
  for (size_t i = 0; i < n / per; ++i) decode(b + i * bytes, dst + i * per);
}

namespace {
struct GgmlTypeName {
  uint32_t id;
  const char* name;
  DType dtype;
};
// ggml.h's enum ggml_type (ids 4, 5 and 31..33 are retired); Unknown: types pmpd does not read.
constexpr GgmlTypeName kGgmlTypes[] = {
    {0, "F32", DType::F32},        {1, "F16", DType::F16},         {2, "Q4_0", DType::Q4_0},
    {3, "Q4_1", DType::Q4_1},      {6, "Q5_0", DType::Q5_0},       {7, "Q5_1", DType::Q5_1},
    {8, "Q8_0", DType::Q8_0},      {9, "Q8_1", DType::Unknown},    {10, "Q2_K", DType::Q2_K},
    {11, "Q3_K", DType::Q3_K},     {12, "Q4_K", DType::Q4_K},      {13, "Q5_K", DType::Q5_K},
    {14, "Q6_K", DType::Q6_K},     {15, "Q8_K", DType::Unknown},   {16, "IQ2_XXS", DType::Unknown},
    {17, "IQ2_XS", DType::Unknown}, {18, "IQ3_XXS", DType::Unknown}, {19, "IQ1_S", DType::Unknown},
    {20, "IQ4_NL", DType::Unknown}, {21, "IQ3_S", DType::Unknown},  {22, "IQ2_S", DType::Unknown},
    {23, "IQ4_XS", DType::Unknown}, {24, "I8", DType::I8},          {25, "I16", DType::I16},
    {26, "I32", DType::I32},       {27, "I64", DType::Unknown},        {28, "F64", DType::F64},
    {29, "IQ1_M", DType::Unknown}, {30, "BF16", DType::BF16},      {34, "TQ1_0", DType::Unknown},
    {35, "TQ2_0", DType::Unknown}, {39, "MXFP4", DType::Unknown},
};
}  // namespace

uint32_t ggml_type_id(DType t) {
  for (auto& g : kGgmlTypes)
    if (g.dtype == t && t != DType::Unknown) return g.id;
  fail("no ggml type for {}", dtype_name(t));
}

DType dtype_from_ggml_type(uint32_t id) {
  for (auto& g : kGgmlTypes)
    if (g.id == id) return g.dtype;
  return DType::Unknown;
}

const char* ggml_type_name(uint32_t id) {
  for (auto& g : kGgmlTypes)
    if (g.id == id) return g.name;
  return "unknown";
}

}  // namespace pmpd
