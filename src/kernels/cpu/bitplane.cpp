#include "kernels/cpu/bitplane.h"

#include "core/arch.h"
#if defined(PMPD_X86)
#include <immintrin.h>
#elif defined(PMPD_NEON)
#include <asm/hwcap.h>
#include <sys/auxv.h>

#include "kernels/cpu/bitplane_neon.h"
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/dot.h"

namespace pmpd::kernels {

namespace {

inline int code_at(const BitPlaneMatrix& m, int bits, int64_t r, int64_t j) {
  int code = 0;
  for (int k = 0; k < bits; ++k) code = (code << 1) | ((m.plane(k, r)[j >> 3] >> (j & 7)) & 1);
  return code;
}

#ifdef PMPD_X86
// ---- AVX-512: 16 columns at a time; the codes are assembled in 32-bit lanes with one
// masked OR per plane, the weights looked up in registers (<= 32 entries) or gathered.
// Columns [j0, j1) of row r with table t (j0 a multiple of 16).
template <int B>
__attribute__((target("avx512f,avx512bw"))) float dot_avx512_range(const BitPlaneMatrix& m, int64_t r, const float* x,
                                                                   const uint16_t* t, int64_t j0, int64_t j1) {
  alignas(64) float lut[1 << B];  // for the gather (6..8 bits) and the columns past the last 16
  if constexpr (B >= 4) {
    for (int i = 0; i < (1 << B); i += 16)
      _mm512_store_ps(lut + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i))));
  } else {
    for (int i = 0; i < (1 << B); ++i) lut[i] = f16_to_f32(t[i]);
  }
  __m512 lut0 = B <= 4 ? _mm512_setzero_ps() : _mm512_load_ps(lut), lut1 = _mm512_setzero_ps();
  if constexpr (B <= 4) {
    // Converted in a register, not reloaded from a zeroed stack copy (a store-forwarding
    // stall a row); masked-off table entries are not read.
    lut0 = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_maskz_loadu_epi16(__mmask32((1u << (1 << B)) - 1), t)));
  } else if constexpr (B == 5) {
    lut1 = _mm512_load_ps(lut + 16);
  }
  const uint16_t* pl[B];
  for (int k = 0; k < B; ++k) pl[k] = reinterpret_cast<const uint16_t*>(m.plane(k, r));
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const int64_t n16 = j1 / 16;
  int64_t g = j0 / 16;
  auto step = [&](int64_t gi) __attribute__((target("avx512f,avx512bw"))) {
    __m512i code = _mm512_setzero_si512();
    for (int k = 0; k < B; ++k) code = _mm512_mask_or_epi32(code, __mmask16(pl[k][gi]), code, _mm512_set1_epi32(1 << (B - 1 - k)));
    __m512 w;
    if constexpr (B <= 4) w = _mm512_permutexvar_ps(code, lut0);
    else if constexpr (B == 5) w = _mm512_permutex2var_ps(lut0, code, lut1);
    else w = _mm512_i32gather_ps(code, lut, 4);
    return _mm512_mul_ps(w, _mm512_loadu_ps(x + gi * 16));
  };
  for (; g + 2 <= n16; g += 2) {
    acc0 = _mm512_add_ps(acc0, step(g));
    acc1 = _mm512_add_ps(acc1, step(g + 1));
  }
  if (g < n16) acc0 = _mm512_add_ps(acc0, step(g));
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (int64_t j = std::max(n16 * 16, j0); j < j1; ++j) s += lut[code_at(m, B, r, j)] * x[j];
  return s;
}

template <int B>
float dot_avx512(const BitPlaneMatrix& m, int64_t r, const float* x) {
  float s = 0;
  const int64_t gs = m.group_size > 0 ? m.group_size : m.cols;
  for (int64_t g = 0; g < m.groups(); ++g) s += dot_avx512_range<B>(m, r, x, m.table(B, r, g), g * gs, std::min(m.cols, (g + 1) * gs));
  return s;
}

// ---- AVX-512 VBMI + VNNI integer kernel: 64 columns per step (R rows per call).
template <int B>
struct Int8Row {
  __m512i t0, t1, t2, t3;
  const uint64_t* pl[B];
  __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni"))) void load(const Int8Width& tables,
                                                                             const BitPlaneMatrix& m, int64_t r) {
    const uint8_t* lut = tables.bytes + (size_t(r) << B);
    t1 = t2 = t3 = _mm512_setzero_si512();
    if constexpr (B <= 6) {
      // A masked load, not a zeroed stack copy: the copy's 64-byte reload missed store
      // forwarding, a stall on every row (masked-off bytes are not read, so no fault).
      t0 = _mm512_maskz_loadu_epi8(__mmask64(B == 6 ? ~0ULL : (1ULL << (1 << B)) - 1), lut);
    } else {
      t0 = _mm512_loadu_si512(lut);
      t1 = _mm512_loadu_si512(lut + 64);
      if constexpr (B == 8) {
        t2 = _mm512_loadu_si512(lut + 128);
        t3 = _mm512_loadu_si512(lut + 192);
      }
    }
    for (int k = 0; k < B; ++k) pl[k] = reinterpret_cast<const uint64_t*>(m.plane(k, r));
  }
  // The row's 64 weights of group g as unsigned bytes.
  __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni"))) __m512i weights(int64_t g) const {
    __m512i code = _mm512_setzero_si512();
    for (int k = 0; k < B; ++k)
      code = _mm512_mask_add_epi8(code, __mmask64(pl[k][g]), code, _mm512_set1_epi8(char(1 << (B - 1 - k))));
    if constexpr (B <= 6) return _mm512_permutexvar_epi8(code, t0);
    else if constexpr (B == 7) return _mm512_permutex2var_epi8(t0, code, t1);
    else {
      __m512i lo = _mm512_permutex2var_epi8(t0, code, t1), hi = _mm512_permutex2var_epi8(t2, code, t3);
      return _mm512_mask_blend_epi8(_mm512_movepi8_mask(code), lo, hi);
    }
  }
};

template <int B, int R>
__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni"))) void dot_int8_rows(const BitPlaneMatrix& m,
                                                                                     const Int8Width& tables, int64_t r0,
                                                                                     const Int8Activations& a,
                                                                                     float* out) {
  Int8Row<B> rows[R];
  for (int i = 0; i < R; ++i) rows[i].load(tables, m, r0 + i);
  const int64_t groups = (m.cols + 63) / 64;  // planes are padded to 64 columns with zero bits
  constexpr int64_t kPerBlock = Int8Activations::kBlock / 64;
  __m512 facc[R];
  for (int i = 0; i < R; ++i) facc[i] = _mm512_setzero_ps();
  for (int64_t g0 = 0; g0 < groups; g0 += kPerBlock) {
    __m512i acc[R];
    for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_si512();
    const int64_t g1 = std::min<int64_t>(groups, g0 + kPerBlock);
    for (int64_t g = g0; g < g1; ++g) {
      const __m512i x = _mm512_loadu_si512(a.q.data() + g * 64);
      for (int i = 0; i < R; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], rows[i].weights(g), x);
    }
    const __m512 sx = _mm512_set1_ps(a.scale[size_t(g0 / kPerBlock)]);
    for (int i = 0; i < R; ++i) facc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i]), sx, facc[i]);
  }
  for (int i = 0; i < R; ++i)
    out[i] = tables.scale[r0 + i] * float(double(_mm512_reduce_add_ps(facc[i])) - a.offset);
}

// Rows that share each activation load: four at 2..3 bits, two at 4..6 (one table register
// a row), one at 7..8 (up to four table registers a row, which would spill). Measured
// (docs/results.md, 2026-12-06) once a row's table load no longer stalled; before that fix
// one row a step had measured fastest.
template <int B>
constexpr int kAvx512RowsPerStep = B <= 3 ? 4 : B <= 6 ? 2 : 1;

// Rows [r0, r1) of m: R at a time, the rest one by one (each row's sum is the same either way).
template <int B>
void rows_int8_avx512(const BitPlaneMatrix& m, const Int8Width& tables, const Int8Activations& a, int64_t r0,
                      int64_t r1, float* y) {
  constexpr int R = kAvx512RowsPerStep<B>;
  int64_t r = r0;
  for (; r + R <= r1; r += R) dot_int8_rows<B, R>(m, tables, r, a, y + r);
  for (; r < r1; ++r) dot_int8_rows<B, 1>(m, tables, r, a, y + r);
}

// ---- AVX2 integer kernel: a 256-column block per step, the activations reordered once a
// product so that plane bits need no shuffles. Byte i of a block's 32 plane bytes holds
// columns 8i..8i+7; shifting the whole vector right by s and masking one bit gives, in byte
// i, the bit of column 8i+s: a plane's bits reach their place in the code with a shift, an
// AND and an OR, where spreading them by shuffle and compare took five operations. So the
// activations are stored in the same order: slot s*32+i of a block holds column 8i+s.
// Weights come from the row's byte table by pshufb (16 entries a shuffle; wider tables are
// 16-entry slices picked by a blend tree on the code's high planes, blendv reading each
// plane bit moved to bit 7), and the products go through maddubs with the sign moved onto
// the weights (|x| <= 127, |w| <= 127, so the pairwise 16-bit sums cannot saturate). Each
// block's integer sum is scaled as bitplane_dot_int8_scalar scales it: the same bits.
// Fills a's block-ordered copy (q_blocked: zero past cols), |q| and each block's sum (the
// table's +128 bias) for `blocks` 256-column blocks.
void build_block_order(Int8Activations& a, int64_t blocks) {
  const size_t n = size_t(blocks) * Int8Activations::kBlock;
  a.q_blocked.assign(n, 0), a.q_abs_blocked.assign(n, 0), a.block_sum.assign(size_t(blocks), 0);
  const int64_t have = int64_t(a.q.size());
  for (int64_t b = 0; b < blocks; ++b)
    for (int s = 0; s < 8; ++s)
      for (int i = 0; i < 32; ++i) {
        const int64_t col = b * 256 + 8 * i + s;
        const int8_t v = col < have ? a.q[size_t(col)] : int8_t(0);
        const size_t slot = size_t(b * 256 + s * 32 + i);
        a.q_blocked[slot] = v, a.q_abs_blocked[slot] = uint8_t(std::abs(int(v)));
        a.block_sum[size_t(b)] += v;
      }
}

// Plane bit s of every byte moved to bit t (the shift's spill from the neighbouring byte
// lands on other bits, which the mask clears).
template <int S, int T>
__attribute__((target("avx2"))) inline __m256i plane_bit(const uint8_t* p) {
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (S > T) v = _mm256_srli_epi16(v, S - T);
  if constexpr (S < T) v = _mm256_slli_epi16(v, T - S);
  return _mm256_and_si256(v, _mm256_set1_epi8(char(1 << T)));
}

template <int B>
struct Avx2Row {
  static constexpr int kLow = B < 4 ? B : 4;               // planes in the pshufb index
  static constexpr int kSlices = 1 << (B - kLow);          // 16-entry slices of the table
  __m256i slice[kSlices];
  const uint8_t* pl[B];

  __attribute__((target("avx2"))) void load(const Int8Width& tables, const BitPlaneMatrix& m, int64_t r) {
    const uint8_t* lut = tables.bytes + (size_t(r) << B);
    for (int t = 0; t < kSlices; ++t) {
      // Loaded straight into a register: staging a short table in a zeroed stack buffer
      // made the 16-byte reload miss store forwarding, a stall per row that cost as much
      // as a 256-column block's work. Bytes past 2^B are never indexed.
      __m128i table;
      if constexpr (B >= 4) {
        table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 16 * t));
      } else if constexpr (B == 3) {
        table = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(lut));
      } else {
        uint32_t word = 0;
        std::memcpy(&word, lut, size_t(1) << B);
        table = _mm_cvtsi32_si128(int(word));
      }
      // Stored as value + 128: flipping the top bit gives the signed weight.
      slice[t] = _mm256_xor_si256(_mm256_broadcastsi128_si256(table), _mm256_set1_epi8(char(0x80)));
    }
    for (int k = 0; k < B; ++k) pl[k] = m.plane(k, r);
  }
  // The 32 signed weights of columns 8i + S (i = 0..31) of the block whose plane bytes
  // start at p[k] for plane k.
  template <int S>
  __attribute__((target("avx2"))) __m256i weights(const uint8_t* const* p) const {
    __m256i code = plane_bit<S, kLow - 1>(p[B - kLow]);
    for (int k = B - kLow + 1; k < B; ++k) code = _mm256_or_si256(code, plane_bit_at<S>(p[k], B - 1 - k));
    __m256i w[kSlices];
    for (int t = 0; t < kSlices; ++t) w[t] = _mm256_shuffle_epi8(slice[t], code);
    // Halve the candidates by planes B-5, B-6, ..., 0 (code bits 4, 5, ..., B-1).
    for (int width = kSlices / 2, k = B - kLow - 1; width >= 1; width /= 2, --k) {
      const __m256i upper = plane_top<S>(p[k]);
      for (int t = 0; t < width; ++t) w[t] = _mm256_blendv_epi8(w[2 * t], w[2 * t + 1], upper);
    }
    return w[0];
  }
  template <int S>
  __attribute__((target("avx2"))) static __m256i plane_bit_at(const uint8_t* p, int t) {
    switch (t) {  // t is a constant once the plane loop is unrolled
      case 0: return plane_bit<S, 0>(p);
      case 1: return plane_bit<S, 1>(p);
      case 2: return plane_bit<S, 2>(p);
      default: return plane_bit<S, 3>(p);
    }
  }
  // Plane bit S at bit 7 of every byte, where blendv reads it.
  template <int S>
  __attribute__((target("avx2"))) static __m256i plane_top(const uint8_t* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (S == 7) return v;
    else return _mm256_slli_epi16(v, 7 - S);
  }
};

template <int B>
__attribute__((target("avx2,fma"))) float dot_int8_avx2(const BitPlaneMatrix& m, const Int8Width& tables, int64_t r,
                                                        const Int8Activations& act) {
  Avx2Row<B> row;
  row.load(tables, m, r);
  const __m256i ones16 = _mm256_set1_epi16(1);
  double total = 0;
  // One 256-column block whose plane k's 32 bytes start at p[k].
  auto block = [&](const uint8_t* const* p, int64_t blk) __attribute__((target("avx2"), always_inline)) {
    const int8_t* xs = act.q_blocked.data() + blk * 256;
    const uint8_t* xa = act.q_abs_blocked.data() + blk * 256;
    __m256i acc = _mm256_setzero_si256();
    auto step = [&]<int S>() __attribute__((target("avx2"))) {
      const __m256i w = row.template weights<S>(p);
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + S * 32));
      const __m256i xabs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa + S * 32));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(xabs, _mm256_sign_epi8(w, x)), ones16));
    };
    step.template operator()<0>(), step.template operator()<1>(), step.template operator()<2>();
    step.template operator()<3>(), step.template operator()<4>(), step.template operator()<5>();
    step.template operator()<6>(), step.template operator()<7>();
    const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    const int64_t signed_sum = _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
    // The scalar reference sums the +128-biased table: add the bias back.
    total += double(signed_sum + 128 * int64_t(act.block_sum[size_t(blk)])) * act.scale[size_t(blk)];
  };
  const int64_t whole = m.plane_stride / 32;
  const uint8_t* p[B];
  for (int64_t blk = 0; blk < whole; ++blk) {
    for (int k = 0; k < B; ++k) p[k] = row.pl[k] + blk * 32;
    block(p, blk);
  }
  if (const int64_t rest = m.plane_stride - whole * 32; rest > 0) {
    // A partial last block (plane rows are whole 8-byte words): its bytes, zeros after, in
    // a row-local copy; a masked load reads no byte past the row.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest / 4)), lane);
    alignas(32) uint8_t tail[B][32];
    for (int k = 0; k < B; ++k) {
      const int* src = reinterpret_cast<const int*>(row.pl[k] + whole * 32);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tail[k]), _mm256_maskload_epi32(src, mask));
      p[k] = tail[k];
    }
    block(p, whole);
  }
  return tables.scale[r] * float(total - act.offset);
}

template <int B>
void rows_int8_avx2(const BitPlaneMatrix& m, const Int8Width& tables, const Int8Activations& a, int64_t r0, int64_t r1,
                    float* y) {
  for (int64_t r = r0; r < r1; ++r) y[r] = dot_int8_avx2<B>(m, tables, r, a);
}

#endif  // PMPD_X86

// An integer kernel: rows[b] computes rows [r0, r1) at width b on the calling thread; a team
// splits a matrix into runs of step[b] rows; blocked: it reads Int8Activations' block order.
struct Int8Kernel {
  Int8RowsFn rows[9];
  int step[9];
  bool blocked;
};
#ifdef PMPD_X86
constexpr Int8Kernel kInt8Avx512 = {
    {nullptr, rows_int8_avx512<1>, rows_int8_avx512<2>, rows_int8_avx512<3>, rows_int8_avx512<4>, rows_int8_avx512<5>,
     rows_int8_avx512<6>, rows_int8_avx512<7>, rows_int8_avx512<8>},
    {1, kAvx512RowsPerStep<1>, kAvx512RowsPerStep<2>, kAvx512RowsPerStep<3>, kAvx512RowsPerStep<4>,
     kAvx512RowsPerStep<5>, kAvx512RowsPerStep<6>, kAvx512RowsPerStep<7>, kAvx512RowsPerStep<8>},
    false};
constexpr Int8Kernel kInt8Avx2 = {{nullptr, rows_int8_avx2<1>, rows_int8_avx2<2>, rows_int8_avx2<3>, rows_int8_avx2<4>,
                                   rows_int8_avx2<5>, rows_int8_avx2<6>, rows_int8_avx2<7>, rows_int8_avx2<8>},
                                  {1, 1, 1, 1, 1, 1, 1, 1, 1},
                                  true};

bool has_int8_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("avx512bw");
}
#endif
#ifdef PMPD_NEON
// SDOT where the core reports it (Armv8.2 dot product: Cortex-A55/A76 on, not the A72).
bool has_neon_dotprod() {
  static const bool yes = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return yes;
}
#endif

#ifdef PMPD_NEON
Int8Kernel neon_kernel(const Int8RowsFn* rows) {
  Int8Kernel k{{}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, false};
  for (int b = 0; b < 9; ++b) k.rows[b] = rows[b];
  return k;
}
#endif

// The integer kernel for the active ISA (VBMI + VNNI, else AVX2; NEON), or null.
const Int8Kernel* int8_kernels() {
#ifdef PMPD_X86
  if (active_isa() == Isa::Avx512 && has_int8_avx512()) return &kInt8Avx512;
  if (active_isa() != Isa::Scalar) return &kInt8Avx2;
#endif
#ifdef PMPD_NEON
  static const Int8Kernel plain = neon_kernel(neon_int8_kernels()), sdot = neon_kernel(neon_int8_kernels_sdot());
  if (active_isa() == Isa::Neon) return has_neon_dotprod() ? &sdot : &plain;
#endif
  return nullptr;
}
bool has_int8_isa() { return int8_kernels() != nullptr; }

// The ISA is checked when a product runs (not here: dot.cpp's ISA choice may not be
// initialised yet during static initialisation).
BitPlaneKernel initial_kernel() {
  const char* e = std::getenv("PMPD_BITPLANE");
  if (e && std::string(e) == "exact") return BitPlaneKernel::Exact;
  return BitPlaneKernel::Int8;
}
BitPlaneKernel g_kernel = initial_kernel();

#ifdef PMPD_X86
// ---- AVX2: 8 columns at a time; each plane byte is broadcast, its bits turned into
// lane masks by compare, the codes gathered from the f32 table.
// Columns [j0, j1) of row r with table t (j0 a multiple of 8).
template <int B>
__attribute__((target("avx2,fma,f16c"))) float dot_avx2_range(const BitPlaneMatrix& m, int64_t r, const float* x,
                                                              const uint16_t* t, int64_t j0, int64_t j1) {
  alignas(32) float lut[1 << B];
  for (int i = 0; i < (1 << B); ++i) lut[i] = f16_to_f32(t[i]);
  const uint8_t* pl[B];
  for (int k = 0; k < B; ++k) pl[k] = m.plane(k, r);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t n8 = j1 / 8;
  for (int64_t g = j0 / 8; g < n8; ++g) {
    __m256i code = _mm256_setzero_si256();
    for (int k = 0; k < B; ++k) {
      __m256i bits = _mm256_and_si256(_mm256_set1_epi32(pl[k][g]), lane_bit);
      __m256i on = _mm256_cmpeq_epi32(bits, lane_bit);
      code = _mm256_or_si256(code, _mm256_and_si256(on, _mm256_set1_epi32(1 << (B - 1 - k))));
    }
    __m256 w = _mm256_i32gather_ps(lut, code, 4);
    if (g & 1) acc1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + g * 8), acc1);
    else acc0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + g * 8), acc0);
  }
  alignas(32) float part[8];
  _mm256_store_ps(part, _mm256_add_ps(acc0, acc1));
  float s = part[0] + part[1] + part[2] + part[3] + part[4] + part[5] + part[6] + part[7];
  for (int64_t j = std::max(n8 * 8, j0); j < j1; ++j) s += lut[code_at(m, B, r, j)] * x[j];
  return s;
}

template <int B>
float dot_avx2(const BitPlaneMatrix& m, int64_t r, const float* x) {
  float s = 0;
  const int64_t gs = m.group_size > 0 ? m.group_size : m.cols;
  for (int64_t g = 0; g < m.groups(); ++g) s += dot_avx2_range<B>(m, r, x, m.table(B, r, g), g * gs, std::min(m.cols, (g + 1) * gs));
  return s;
}

using DotFn = float (*)(const BitPlaneMatrix&, int64_t, const float*);
constexpr DotFn kAvx2[9] = {nullptr, dot_avx2<1>, dot_avx2<2>, dot_avx2<3>, dot_avx2<4>,
                            dot_avx2<5>, dot_avx2<6>, dot_avx2<7>, dot_avx2<8>};
constexpr DotFn kAvx512[9] = {nullptr, dot_avx512<1>, dot_avx512<2>, dot_avx512<3>, dot_avx512<4>,
                              dot_avx512<5>, dot_avx512<6>, dot_avx512<7>, dot_avx512<8>};

#endif  // PMPD_X86

}  // namespace


BitPlaneKernel bitplane_kernel() { return g_kernel; }
void set_bitplane_kernel(BitPlaneKernel k) { g_kernel = k == BitPlaneKernel::Int8 && !has_int8_isa() ? BitPlaneKernel::Exact : k; }

namespace {
// std::lround for |v| <= 127 without the libm call (it showed at 3-4% of a small model's
// decode, and in every table entry at load): truncate, then step away from zero when the
// dropped part is at least one half. v - t is exact (same sign, |v - t| < 1), so ties go
// the way lround sends them.
inline int round_half_away(float v) {
  const int t = int(v);
  const float rest = v - float(t);
  return rest >= 0.5f ? t + 1 : rest <= -0.5f ? t - 1 : t;
}
}  // namespace

struct Int8Tables {
  std::mutex build;                             // held while a width's tables are built
  std::array<std::atomic<bool>, 9> ready{};     // by width: bytes and scale complete
  std::array<std::vector<uint8_t>, 9> bytes;    // by width: [rows][2^bits]
  std::array<std::vector<float>, 9> scale;      // by width: [rows]
};

void prepare_int8(BitPlaneMatrix& m) {
  m.int8.reset();
  if (m.groups() > 1) return;
  PMPD_CHECK(m.bits_min >= 1 && m.bits_max <= 8, "bit-plane widths {}..{} outside 1..8", m.bits_min, m.bits_max);
  m.int8 = std::make_shared<Int8Tables>();
}

Int8Width int8_width(const BitPlaneMatrix& m, int bits) {
  PMPD_CHECK(m.int8 && bits >= m.bits_min && bits <= m.bits_max, "no integer tables for {} bits", bits);
  Int8Tables& t = *m.int8;
  const size_t b = size_t(bits);
  if (!t.ready[b].load(std::memory_order_acquire)) {
    const std::lock_guard<std::mutex> lock(t.build);
    if (!t.ready[b].load(std::memory_order_relaxed)) {
      std::vector<uint8_t> u(size_t(m.rows) << bits);
      std::vector<float> sc(size_t(m.rows));
      // Rows in parallel (about 5 s of a 7B model's every width on one core before, with a
      // libm call a table entry; one width's now costs its 2^bits bytes a row once).
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < m.rows; ++r) {
        const uint16_t* table = m.table(bits, r);
        float v[256];
        float mx = 0;
        to_f32(DType::F16, table, v, size_t(1) << bits);  // F16C where the CPU has it
        for (int c = 0; c < (1 << bits); ++c) mx = std::max(mx, std::fabs(v[c]));
        const float s = mx > 0 ? mx / 127.f : 1.f;
        sc[size_t(r)] = s;
        for (int c = 0; c < (1 << bits); ++c) u[(size_t(r) << bits) + size_t(c)] = uint8_t(round_half_away(v[c] / s) + 128);
      }
      t.bytes[b] = std::move(u), t.scale[b] = std::move(sc);
      t.ready[b].store(true, std::memory_order_release);
    }
  }
  return {t.bytes[b].data(), t.scale[b].data()};
}

size_t int8_table_bytes(const BitPlaneMatrix& m) {
  if (!m.int8) return 0;
  size_t n = 0;
  for (size_t b = 0; b < m.int8->ready.size(); ++b)
    if (m.int8->ready[b].load(std::memory_order_acquire)) n += m.int8->bytes[b].size() + m.int8->scale[b].size() * sizeof(float);
  return n;
}

namespace {
// One block of activations: the largest |x|, then each x over the scale rounded half away
// from zero. Returns the sum of the rounded values.
int64_t quantize_block_scalar(const float* x, int64_t n, float& scale, int8_t* q) {
  float mx = 0;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, std::fabs(x[j]));
  const float s = mx > 0 ? mx / 127.f : 1.f;
  int64_t sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int v = round_half_away(x[j] / s);
    q[j] = int8_t(v);
    sum += v;
  }
  scale = s;
  return sum;
}

#ifdef PMPD_X86
// The same operations 16 lanes at a time (it ran at ~5% of a small model's decode as
// scalar code): max_ps keeps the running maximum where |x| is NaN, as std::max does; the
// division is IEEE in either form; truncation, the step away from zero and the narrowing
// to bytes (vpmovdb truncates, as the int8_t cast does) give the scalar loop's bytes.
__attribute__((target("avx512f"))) int64_t quantize_block_avx512(const float* x, int64_t n, float& scale,
                                                                   int8_t* q) {
  auto lanes = [n](int64_t j) { return n - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j)) - 1); };
  __m512 mx = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 in = lanes(j);
    mx = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(in, x + j)), mx);
  }
  const float top = _mm512_reduce_max_ps(mx);
  const float s = top > 0 ? top / 127.f : 1.f;
  const __m512 sv = _mm512_set1_ps(s), half = _mm512_set1_ps(0.5f), neg_half = _mm512_set1_ps(-0.5f);
  const __m512i one = _mm512_set1_epi32(1);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 in = lanes(j);
    const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(in, x + j), sv);
    __m512i t = _mm512_cvttps_epi32(v);
    const __m512 rest = _mm512_sub_ps(v, _mm512_cvtepi32_ps(t));
    t = _mm512_mask_add_epi32(t, _mm512_cmp_ps_mask(rest, half, _CMP_GE_OQ), t, one);
    t = _mm512_mask_sub_epi32(t, _mm512_cmp_ps_mask(rest, neg_half, _CMP_LE_OQ), t, one);
    _mm512_mask_cvtepi32_storeu_epi8(q + j, in, t);
    sum = _mm512_mask_add_epi32(sum, in, sum, t);
  }
  // Lane sums of at most 16 values of |v| <= 127 (or INT_MIN where x/s is NaN, as the
  // scalar cast gives): widened before the horizontal sum so that none can wrap.
  const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(sum));
  const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(sum, 1));
  scale = s;
  return _mm512_reduce_add_epi64(_mm512_add_epi64(lo, hi));
}
#endif
}  // namespace

void quantize_activations(const float* x, int64_t cols, Int8Activations& a) {
  const int64_t padded = (cols + 63) / 64 * 64;
  const int64_t blocks = (cols + Int8Activations::kBlock - 1) / Int8Activations::kBlock;
  // The blocks below write every column; only the padding is cleared (kept buffers, no
  // memset of the whole row per product).
  a.q.resize(size_t(padded));
  std::fill(a.q.begin() + cols, a.q.end(), int8_t(0));
  a.scale.resize(size_t(blocks));
  a.offset = 0;
  auto* block = quantize_block_scalar;
#ifdef PMPD_X86
  if (active_isa() == Isa::Avx512) block = quantize_block_avx512;
#endif
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * Int8Activations::kBlock, n = std::min(cols, j0 + Int8Activations::kBlock) - j0;
    float& s = a.scale[size_t(blk)];
    const int64_t sum = block(x + j0, n, s, a.q.data() + j0);
    a.offset += 128.0 * double(s) * double(sum);
  }
}

float bitplane_dot_int8_scalar(const BitPlaneMatrix& m, int bits, int64_t r, const Int8Activations& a) {
  const Int8Width tables = int8_width(m, bits);
  const uint8_t* lut = tables.bytes + (size_t(r) << bits);
  double total = 0;
  for (int64_t j0 = 0; j0 < m.cols; j0 += Int8Activations::kBlock) {
    int64_t acc = 0;
    for (int64_t j = j0; j < std::min(m.cols, j0 + Int8Activations::kBlock); ++j)
      acc += int64_t(lut[code_at(m, bits, r, j)]) * a.q[size_t(j)];
    total += double(acc) * a.scale[size_t(j0 / Int8Activations::kBlock)];
  }
  return tables.scale[r] * float(total - a.offset);
}

namespace {
// kSpread[b]: byte i is bit i of b, so one plane byte lands in 8 byte-wide codes at once.
const std::array<uint64_t, 256> kSpread = [] {
  std::array<uint64_t, 256> t{};
  for (int b = 0; b < 256; ++b)
    for (int i = 0; i < 8; ++i)
      if ((b >> i) & 1) t[size_t(b)] |= uint64_t(1) << (8 * i);
  return t;
}();
}  // namespace

namespace {
#ifdef PMPD_X86
// AVX-512 dequantization of one row with one table, 16 columns a step: codes assembled
// with one masked OR per plane, the table (as f32, 2^B entries) held in registers and
// read by permutes: one at <= 4 bits, two-source at 5, a tree of two-source permutes
// selected by the code's high bits at 6..8 (AMD's gathers are slower).
template <int B>
__attribute__((target("avx512f,avx512bw"))) void dequant_row_avx512(const BitPlaneMatrix& m, int64_t r, float* out) {
  constexpr int kSlices = B <= 5 ? 1 : 1 << (B - 5);  // 32-entry slices
  const uint16_t* t = m.table(B, r);
  alignas(64) float lut[32 * kSlices] = {};
  for (int c = 0; c < (1 << B); ++c) lut[c] = f16_to_f32(t[c]);
  __m512 lo[kSlices], hi[kSlices];
  for (int s = 0; s < kSlices; ++s) lo[s] = _mm512_load_ps(lut + 32 * s), hi[s] = _mm512_load_ps(lut + 32 * s + 16);
  const uint16_t* pl[B];
  for (int k = 0; k < B; ++k) pl[k] = reinterpret_cast<const uint16_t*>(m.plane(k, r));
  const int64_t steps = m.cols / 16;
  for (int64_t g = 0; g < steps; ++g) {
    __m512i code = _mm512_setzero_si512();
    for (int k = 0; k < B; ++k) code = _mm512_mask_or_epi32(code, __mmask16(pl[k][g]), code, _mm512_set1_epi32(1 << (B - 1 - k)));
    __m512 w[kSlices];
    for (int s = 0; s < kSlices; ++s)
      w[s] = B <= 4 ? _mm512_permutexvar_ps(code, lo[s]) : _mm512_permutex2var_ps(lo[s], code, hi[s]);
    for (int width = kSlices / 2, bit = 5; width >= 1; width /= 2, ++bit) {  // halve the candidates by code bit 5, 6, 7
      const __mmask16 upper = _mm512_test_epi32_mask(code, _mm512_set1_epi32(1 << bit));
      for (int s = 0; s < width; ++s) w[s] = _mm512_mask_blend_ps(upper, w[2 * s], w[2 * s + 1]);
    }
    _mm512_storeu_ps(out + g * 16, w[0]);
  }
  for (int64_t j = steps * 16; j < m.cols; ++j) out[j] = lut[code_at(m, B, r, j)];
}

using DequantFn = void (*)(const BitPlaneMatrix&, int64_t, float*);
constexpr DequantFn kDequantAvx512[9] = {nullptr, dequant_row_avx512<1>, dequant_row_avx512<2>,
                                         dequant_row_avx512<3>, dequant_row_avx512<4>, dequant_row_avx512<5>,
                                         dequant_row_avx512<6>, dequant_row_avx512<7>, dequant_row_avx512<8>};
#endif  // PMPD_X86

}  // namespace

void bitplane_dequant_row(const BitPlaneMatrix& m, int bits, int64_t r, float* out) {
#ifdef PMPD_X86
  if (active_isa() == Isa::Avx512 && m.groups() == 1) {
    kDequantAvx512[bits](m, r, out);
    if (m.nnz)
      for (int32_t i = m.sp_rowptr[r]; i < m.sp_rowptr[r + 1]; ++i) out[m.sp_col[i]] = f16_to_f32(m.sp_val[i]);
    return;
  }
#endif
  // Codes assembled 8 columns per 64-bit word, plane by plane (most significant first; a
  // byte's code stays below 2^bits <= 256, so shifting never carries into its neighbour),
  // then one table look-up per column.
  thread_local std::vector<uint64_t> words;
  words.assign(size_t(m.plane_stride), 0);
  for (int k = 0; k < bits; ++k) {
    const uint8_t* p = m.plane(k, r);
    for (int64_t jb = 0; jb < m.plane_stride; ++jb) words[size_t(jb)] = (words[size_t(jb)] << 1) | kSpread[p[jb]];
  }
  const uint8_t* codes = reinterpret_cast<const uint8_t*>(words.data());  // x86: byte i of a word is column 8w + i
  float lut[256];
  const int64_t gs = m.group_size > 0 ? m.group_size : m.cols;
  for (int64_t g = 0; g < m.groups(); ++g) {
    const uint16_t* t = m.table(bits, r, g);
    for (int c = 0; c < (1 << bits); ++c) lut[c] = f16_to_f32(t[c]);
    for (int64_t j = g * gs; j < std::min(m.cols, (g + 1) * gs); ++j) out[j] = lut[codes[j]];
  }
  if (m.nnz)
    for (int32_t i = m.sp_rowptr[r]; i < m.sp_rowptr[r + 1]; ++i) out[m.sp_col[i]] = f16_to_f32(m.sp_val[i]);
}

namespace {

float dense_dot_scalar(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
  float s = 0;
  for (int64_t j = 0; j < m.cols; ++j) s += f16_to_f32(m.table(bits, r, m.group_of(j))[code_at(m, bits, r, j)]) * x[j];
  return s;
}

float dense_dot(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
#ifdef PMPD_X86
  if (active_isa() == Isa::Avx512) return kAvx512[bits](m, r, x);
  if (active_isa() == Isa::Avx2) return kAvx2[bits](m, r, x);
#endif
  return dense_dot_scalar(m, bits, r, x);  // NEON: the integer kernel is the decode path
}

float sparse_row(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
  if (!m.nnz) return 0.f;
  float s = 0;
  for (int32_t i = m.sp_rowptr[r]; i < m.sp_rowptr[r + 1]; ++i) {
    const int64_t j = m.sp_col[i];
    s += (f16_to_f32(m.sp_val[i]) - f16_to_f32(m.table(bits, r, m.group_of(j))[code_at(m, bits, r, j)])) * x[j];
  }
  return s;
}

// y[r] += (sparse value - dense weight) * x[col] for every outlier of row r, so dense +
// sparse reproduces the stored outliers exactly at every width.
void add_sparse(const BitPlaneMatrix& m, int bits, const float* x, float* y) {
  if (!m.nnz) return;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < m.rows; ++r) y[r] += sparse_row(m, bits, r, x);
}

}  // namespace

float bitplane_dot_scalar(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
  return dense_dot_scalar(m, bits, r, x) + sparse_row(m, bits, r, x);
}

float bitplane_dot(const BitPlaneMatrix& m, int bits, int64_t r, const float* x) {
  return dense_dot(m, bits, r, x) + sparse_row(m, bits, r, x);
}

namespace {
// One input through several matrices with the integer kernel k: x quantized once (and put
// in k's block order where it reads one), one team for every matrix's rows. Each thread
// takes its static share of a matrix and goes on to the next without waiting.
void matvec_int8_many(const Int8Kernel& k, std::span<const BitPlaneMatrix* const> ms, int bits, const float* x,
                      std::span<float* const> ys) {
  thread_local Int8Activations a;  // reused: its buffers keep their capacity
  const int64_t cols = ms[0]->cols;
  quantize_activations(x, cols, a);
#ifdef PMPD_X86
  if (k.blocked) build_block_order(a, (ms[0]->plane_stride + 31) / 32);
#endif
  // Each width's tables are built here, before the team, where first used; inside it
  // int8_width is a load and a pointer.
  size_t bytes = 0;
  for (const BitPlaneMatrix* m : ms) int8_width(*m, bits), bytes += m->bytes_read(bits);
  const Int8RowsFn rows = k.rows[bits];
  const int64_t step = k.step[bits];
  const Int8Activations& in = a;
  // Each team member takes its static share of every matrix in turn (orphaned `omp for`s);
  // called outside a region (a small product), the one thread takes all of them.
  auto shares = [&] {
    for (size_t i = 0; i < ms.size(); ++i) {
      const BitPlaneMatrix& m = *ms[i];
      const Int8Width tables = int8_width(m, bits);
      const int64_t runs = (m.rows + step - 1) / step;
#pragma omp for schedule(static) nowait
      for (int64_t u = 0; u < runs; ++u) rows(m, tables, in, u * step, std::min(m.rows, (u + 1) * step), ys[i]);
    }
  };
  if (worth_threads(bytes)) {
#pragma omp parallel
    shares();
  } else {
    shares();
  }
  for (size_t i = 0; i < ms.size(); ++i) add_sparse(*ms[i], bits, x, ys[i]);
}

bool int8_applies(const BitPlaneMatrix& m, int bits) {
  PMPD_CHECK(bits >= m.bits_min && bits <= m.bits_max, "{} bits requested; the weights hold {} to {}", bits,
             m.bits_min, m.bits_max);
  return g_kernel == BitPlaneKernel::Int8 && m.int8 && int8_kernels();
}
}  // namespace

void bitplane_matvec_many(std::span<const BitPlaneMatrix* const> ms, int bits, const float* x,
                          std::span<float* const> ys) {
  PMPD_CHECK(!ms.empty() && ms.size() == ys.size(), "bitplane_matvec_many: {} matrices, {} outputs", ms.size(), ys.size());
  bool together = true;
  for (const BitPlaneMatrix* m : ms) together = int8_applies(*m, bits) && m->cols == ms[0]->cols && together;
  if (together) return matvec_int8_many(*int8_kernels(), ms, bits, x, ys);
  for (size_t i = 0; i < ms.size(); ++i) bitplane_matmul(*ms[i], bits, x, 1, ys[i]);
}

void bitplane_matmul(const BitPlaneMatrix& m, int bits, const float* X, int n_tokens, float* Y) {
  const int64_t rows = m.rows, cols = m.cols;
  // A few tokens: per-token integer products read the planes (cache-hot after the
  // first token) instead of widening every row to f32.
  if (int8_applies(m, bits) && n_tokens <= 4) {
    const BitPlaneMatrix* const one = &m;
    for (int t = 0; t < n_tokens; ++t) {
      float* const y = Y + int64_t(t) * rows;
      matvec_int8_many(*int8_kernels(), {&one, 1}, bits, X + int64_t(t) * cols, {&y, 1});
    }
    return;
  }
  if (n_tokens == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) Y[r] = dense_dot(m, bits, r, X);
    add_sparse(m, bits, X, Y);
    return;
  }
  // Prompt: dequantize a block of rows once, then multiply it with every token in register
  // tiles (the same sums as the exact kernels' row by row products).
  matmul_widened_rows(rows, cols, X, n_tokens, Y, [&](int64_t r, float* scratch) {
    bitplane_dequant_row(m, bits, r, scratch);
    return static_cast<const float*>(scratch);
  });
}

}  // namespace pmpd::kernels
