#include "kernels/cpu/dot.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pmpd::kernels {

namespace {

float dot_f32_scalar(const float* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += w[i] * x[i];
  return s;
}
// The vector kernels' f32 tail (n % vector width columns): fused multiply-adds, which
// round the same wherever they run, so dot() and the tiles agree bit for bit whether or
// not the compiler inlines the tail and contracts its products.
float dot_f32_tail(const float* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s = std::fma(w[i], x[i], s);
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
  if constexpr (T == DType::F32) return s + dot_f32_tail(w + i, x + i, n - i);
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

// ---- Tiles of R rows x T tokens (prompt processing), every pair summed in exactly
// dot()'s order. dot() keeps four accumulators, accumulator k taking the k-th vector of
// each chunk of four vectors (and accumulator 0 the whole vectors after the last chunk);
// those four sums are independent, so a tile computes them one after another: only
// R x T accumulators are live, and each loaded vector serves T rows' or R tokens' pairs
// instead of one (dot() loads two vectors per multiply-add). Inputs are in tile layout
// (tile_layout()), so each of the four passes reads memory in order.
template <int R, int T>
PMPD_AVX512 void tile_avx512(const float* W, int64_t ldw, const float* X, int64_t ldx, int64_t n, float* Y,
                             int64_t ldy) {
  constexpr int64_t L = 16;
  const int64_t pass = n / (4 * L) * L, vectors_end = n / L * L;
  __m512 part[4][R][T];
  for (int k = 0; k < 4; ++k) {
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    auto step = [&](int64_t i) PMPD_AVX512 {
      __m512 w[R];
      for (int r = 0; r < R; ++r) w[r] = _mm512_loadu_ps(W + r * ldw + i);
      for (int t = 0; t < T; ++t) {
        const __m512 x = _mm512_loadu_ps(X + t * ldx + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(w[r], x, acc[r][t]);
      }
    };
    for (int64_t i = k * pass; i < (k + 1) * pass; i += L) step(i);
    if (k == 0)
      for (int64_t i = 4 * pass; i < vectors_end; i += L) step(i);
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) part[k][r][t] = acc[r][t];
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      const __m512 sum = _mm512_add_ps(_mm512_add_ps(part[0][r][t], part[1][r][t]),
                                       _mm512_add_ps(part[2][r][t], part[3][r][t]));
      Y[t * ldy + r] = _mm512_reduce_add_ps(sum) +
                       dot_f32_tail(W + r * ldw + vectors_end, X + t * ldx + vectors_end, n - vectors_end);
    }
}

// AVX2 has 16 vector registers: tiles of at most 3 x 3 (9 accumulators, 3 rows, 1 token).
template <int R, int T>
PMPD_AVX2 void tile_avx2(const float* W, int64_t ldw, const float* X, int64_t ldx, int64_t n, float* Y, int64_t ldy) {
  constexpr int64_t L = 8;
  const int64_t pass = n / (4 * L) * L, vectors_end = n / L * L;
  __m256 part[4][R][T];
  for (int k = 0; k < 4; ++k) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    auto step = [&](int64_t i) PMPD_AVX2 {
      __m256 w[R];
      for (int r = 0; r < R; ++r) w[r] = _mm256_loadu_ps(W + r * ldw + i);
      for (int t = 0; t < T; ++t) {
        const __m256 x = _mm256_loadu_ps(X + t * ldx + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(w[r], x, acc[r][t]);
      }
    };
    for (int64_t i = k * pass; i < (k + 1) * pass; i += L) step(i);
    if (k == 0)
      for (int64_t i = 4 * pass; i < vectors_end; i += L) step(i);
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) part[k][r][t] = acc[r][t];
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      const __m256 sum = _mm256_add_ps(_mm256_add_ps(part[0][r][t], part[1][r][t]),
                                       _mm256_add_ps(part[2][r][t], part[3][r][t]));
      Y[t * ldy + r] =
          hsum256(sum) + dot_f32_tail(W + r * ldw + vectors_end, X + t * ldx + vectors_end, n - vectors_end);
    }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);
template <template <int, int> class Tile, int R, int... Ts>
constexpr std::array<TileFn, sizeof...(Ts)> tile_row(std::integer_sequence<int, Ts...>) {
  return {Tile<R, Ts + 1>::fn...};
}
template <int R, int T>
struct Avx512Tile {
  static constexpr TileFn fn = tile_avx512<R, T>;
};
template <int R, int T>
struct Avx2Tile {
  static constexpr TileFn fn = tile_avx2<R, T>;
};
// kTiles[r - 1][t - 1]: the kernel of an r x t tile.
constexpr std::array<std::array<TileFn, 4>, 4> kAvx512Tiles = {
    tile_row<Avx512Tile, 1>(std::make_integer_sequence<int, 4>{}),
    tile_row<Avx512Tile, 2>(std::make_integer_sequence<int, 4>{}),
    tile_row<Avx512Tile, 3>(std::make_integer_sequence<int, 4>{}),
    tile_row<Avx512Tile, 4>(std::make_integer_sequence<int, 4>{})};
constexpr std::array<std::array<TileFn, 3>, 3> kAvx2Tiles = {
    tile_row<Avx2Tile, 1>(std::make_integer_sequence<int, 3>{}),
    tile_row<Avx2Tile, 2>(std::make_integer_sequence<int, 3>{}),
    tile_row<Avx2Tile, 3>(std::make_integer_sequence<int, 3>{})};

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

namespace {
template <int64_t L>
void tile_layout_for(const float* v, int64_t n, float* out) {
  // Vector k of chunk i goes to pass k's run: out[(k * chunks + i) * L ...].
  const int64_t chunks = n / (4 * L);
  for (int64_t i = 0; i < chunks; ++i)
    for (int64_t k = 0; k < 4; ++k) std::memcpy(out + (k * chunks + i) * L, v + (4 * i + k) * L, L * sizeof(float));
  std::memcpy(out + 4 * chunks * L, v + 4 * chunks * L, size_t(n - 4 * chunks * L) * sizeof(float));
}
}  // namespace

void tile_layout(const float* v, int64_t n, float* out) {
  if (g_isa == Isa::Avx512) tile_layout_for<16>(v, n, out);
  else if (g_isa == Isa::Avx2) tile_layout_for<8>(v, n, out);
  else std::memcpy(out, v, size_t(n) * sizeof(float));
}

void dot_tile(const float* W, int64_t ldw, int n_rows, const float* X, int64_t ldx, int n_tokens, int64_t n, float* Y,
              int64_t ldy) {
  auto run = [&](const auto& tiles) {
    const int max = int(tiles.size());
    for (int t0 = 0; t0 < n_tokens; t0 += max)
      for (int r0 = 0; r0 < n_rows; r0 += max) {
        const int r = std::min(max, n_rows - r0), t = std::min(max, n_tokens - t0);
        tiles[size_t(r - 1)][size_t(t - 1)](W + r0 * ldw, ldw, X + t0 * ldx, ldx, n, Y + t0 * ldy + r0, ldy);
      }
  };
  if (g_isa == Isa::Avx512) return run(kAvx512Tiles);
  if (g_isa == Isa::Avx2) return run(kAvx2Tiles);
  for (int t = 0; t < n_tokens; ++t)
    for (int r = 0; r < n_rows; ++r) Y[t * ldy + r] = dot_f32_scalar(W + r * ldw, X + t * ldx, n);
}

void matmul(const TensorView& W, const float* X, int n_tokens, float* Y) {
  const int64_t rows = W.rows(), cols = W.cols();
  const DType t = W.dtype;
  if (n_tokens == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) Y[r] = dot(t, W.row_ptr(r), X, cols);
    return;
  }
  // Several tokens: each row widened to f32 once, multiplied with every token in tiles.
  matmul_widened_rows(rows, cols, X, n_tokens, Y, [&](int64_t r, float* scratch) {
    if (t == DType::F32) return reinterpret_cast<const float*>(W.row_ptr(r));
    to_f32(t, W.row_ptr(r), scratch, size_t(cols));
    return static_cast<const float*>(scratch);
  });
}

}  // namespace pmpd::kernels
