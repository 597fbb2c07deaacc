#include "kernels/cpu/dot.h"

#include "core/arch.h"
#if defined(PMPD_X86)
#include <immintrin.h>
#elif defined(PMPD_NEON)
#include <arm_neon.h>
#endif
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dot_simd.h"

namespace pmpd::kernels {

namespace {

using namespace simd;


Isa detect() {
#if defined(PMPD_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    return Isa::Avx2;
  return Isa::Scalar;
#elif defined(PMPD_NEON)
  return Isa::Neon;
#else
  return Isa::Scalar;
#endif
}

// Whether this CPU runs `isa`: scalar everywhere, on x86 every x86 ISA up to the best one
// detected (AVX-512 machines also run the AVX2 kernels), NEON on AArch64.
bool supported(Isa isa) {
  const Isa best = detect();
  if (isa == Isa::Scalar || isa == best) return true;
  return best != Isa::Neon && isa != Isa::Neon && int(isa) <= int(best);
}

Isa initial_isa() {
  if (const char* e = std::getenv("PMPD_ISA")) {
    const std::string s = e;
    const Isa want = s == "scalar" ? Isa::Scalar : s == "avx2" ? Isa::Avx2 : s == "neon" ? Isa::Neon : Isa::Avx512;
    if (supported(want)) return want;
  }
  return detect();
}

Isa g_isa = initial_isa();

#ifdef PMPD_X86
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

#endif  // PMPD_X86

}  // namespace

Isa active_isa() { return g_isa; }
void set_isa(Isa isa) { g_isa = supported(isa) ? isa : detect(); }
const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Neon: return "neon";
    default: return "scalar";
  }
}

float dot_scalar(DType t, const void* row, const float* x, int64_t n) {
  switch (t) {
    case DType::F32: return dot_f32_scalar(static_cast<const float*>(row), x, n);
    case DType::F16: return dot_f16_scalar(static_cast<const uint16_t*>(row), x, n);
    case DType::BF16: return dot_bf16_scalar(static_cast<const uint16_t*>(row), x, n);
    default: fail("dot: unsupported weight dtype {}", dtype_name(t));
  }
}

namespace {
// y[r] = dot(T, row r, x) for `count` contiguous rows of n weights.
template <DType T, typename W>
void rows_scalar(const W* w, int64_t count, const float* x, int64_t n, float* y) {
  for (int64_t r = 0; r < count; ++r) y[r] = dot_scalar(T, w + r * n, x, n);
}
#ifdef PMPD_X86
template <DType T, typename W>
PMPD_AVX512 void rows_avx512(const W* w, int64_t count, const float* x, int64_t n, float* y) {
  for (int64_t r = 0; r < count; ++r) y[r] = dot_avx512<T>(w + r * n, x, n);
}
template <DType T, typename W>
PMPD_AVX2 void rows_avx2(const W* w, int64_t count, const float* x, int64_t n, float* y) {
  for (int64_t r = 0; r < count; ++r) y[r] = dot_avx2<T>(w + r * n, x, n);
}
#endif
#ifdef PMPD_NEON
template <DType T, typename W>
void rows_neon(const W* w, int64_t count, const float* x, int64_t n, float* y) {
  for (int64_t r = 0; r < count; ++r) y[r] = dot_neon<T>(w + r * n, x, n);
}
#endif

template <DType T, typename W>
void rows_of(const W* w, int64_t count, const float* x, int64_t n, float* y) {
  switch (g_isa) {
#ifdef PMPD_X86
    case Isa::Avx512: return rows_avx512<T>(w, count, x, n, y);
    case Isa::Avx2: return rows_avx2<T>(w, count, x, n, y);
#endif
#ifdef PMPD_NEON
    case Isa::Neon: return rows_neon<T>(w, count, x, n, y);
#endif
    default: return rows_scalar<T>(w, count, x, n, y);
  }
}
}  // namespace

void dot_rows(DType t, const void* rows, int64_t count, const float* x, int64_t n, float* y) {
  auto* h = static_cast<const uint16_t*>(rows);
  switch (t) {
    case DType::F32: return rows_of<DType::F32>(static_cast<const float*>(rows), count, x, n, y);
    case DType::F16: return rows_of<DType::F16>(h, count, x, n, y);
    case DType::BF16: return rows_of<DType::BF16>(h, count, x, n, y);
    default: fail("dot: unsupported weight dtype {}", dtype_name(t));
  }
}

float dot(DType t, const void* row, const float* x, int64_t n) {
  auto* h = static_cast<const uint16_t*>(row);
  switch (g_isa) {
#ifdef PMPD_X86
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
#endif
#ifdef PMPD_NEON
    case Isa::Neon:
      if (t == DType::F32) return dot_neon<DType::F32>(static_cast<const float*>(row), x, n);
      if (t == DType::F16) return dot_neon<DType::F16>(h, x, n);
      if (t == DType::BF16) return dot_neon<DType::BF16>(h, x, n);
      break;
#endif
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
#ifdef PMPD_X86
  if (g_isa == Isa::Avx512) return tile_layout_for<16>(v, n, out);
  if (g_isa == Isa::Avx2) return tile_layout_for<8>(v, n, out);
#endif
  std::memcpy(out, v, size_t(n) * sizeof(float));  // scalar and NEON: dot() pair by pair
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
#ifdef PMPD_X86
  if (g_isa == Isa::Avx512) return run(kAvx512Tiles);
  if (g_isa == Isa::Avx2) return run(kAvx2Tiles);
#endif
  (void)run;
  // Scalar and NEON: dot() itself pair by pair (the same bits by construction).
  for (int t = 0; t < n_tokens; ++t)
    for (int r = 0; r < n_rows; ++r) Y[t * ldy + r] = dot(DType::F32, W + r * ldw, X + t * ldx, n);
}

// 64 KB: on the 2-core VM of docs/results.md ("One team for q, k and v") a 384x384 matrix
// was slower on two threads than on one at 2 and 3 bits (37 and 55 KB read) and faster at
// 4 bits (74 KB) and above. PMPD_PAR_MIN_BYTES sets another bound (0: always a team).
namespace {
std::atomic<size_t> g_min_parallel_bytes{[] {
  const char* e = std::getenv("PMPD_PAR_MIN_BYTES");
  return e ? size_t(std::strtoull(e, nullptr, 10)) : size_t(64) << 10;
}()};
}  // namespace

bool worth_threads(size_t bytes) {
  return bytes >= g_min_parallel_bytes.load(std::memory_order_relaxed) && omp_get_max_threads() > 1;
}
size_t min_parallel_bytes() { return g_min_parallel_bytes.load(std::memory_order_relaxed); }
void set_min_parallel_bytes(size_t bytes) { g_min_parallel_bytes.store(bytes, std::memory_order_relaxed); }

void matmul(const TensorView& W, const float* X, int n_tokens, float* Y) {
  const int64_t rows = W.rows(), cols = W.cols();
  const DType t = W.dtype;
  if (n_tokens == 1) {
    // Blocks of rows, each one loop with the row's dot inlined (no call and dispatch a row:
    // a small model's LM head is thousands of short rows).
    if (!worth_threads(W.nbytes())) return dot_rows(t, W.data, rows, X, cols, Y);
    constexpr int64_t kBlock = 32;
    const int64_t blocks = (rows + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kBlock;
      dot_rows(t, W.row_ptr(r0), std::min(kBlock, rows - r0), X, cols, Y + r0);
    }
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
