// Dot products and matrix-vector products over weights stored as f32, f16 or bf16,
// with f32 activations and f32 accumulation. A scalar reference exists for every
// kernel; on x86 AVX2 and AVX-512 versions are picked at run time, on AArch64 NEON
// (PMPD_ISA=scalar|avx2|avx512|neon forces one the CPU has, for tests and benchmarks).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace pmpd::kernels {

enum class Isa { Scalar, Avx2, Avx512, Neon };

Isa active_isa();
void set_isa(Isa isa);  // clamps to what the CPU supports
const char* isa_name(Isa isa);

// dot(row, x) for a weight row of dtype `t` and length n.
float dot(DType t, const void* row, const float* x, int64_t n);
float dot_scalar(DType t, const void* row, const float* x, int64_t n);
// y[r] = dot(t, row r, x) for `count` contiguous rows of n weights from `rows` on: the same
// bits as dot() row by row, without a call and dispatch per row.
void dot_rows(DType t, const void* rows, int64_t count, const float* x, int64_t n, float* y);

// Prompt products in register tiles: Y[t * ldy + r] = dot(F32, w_r, x_t, n) for
// r < n_rows, t < n_tokens, bit-identical to dot() pair by pair (so a prompt's logits do
// not depend on how its rows and tokens are blocked), with each loaded vector serving
// several pairs. dot() keeps four accumulators, each summing every fourth vector; the
// tiles run them one after another, so W's rows and X's tokens must be given in tile
// layout (each accumulator's vectors together, for the active ISA): tile_layout(v, n, out).
void tile_layout(const float* v, int64_t n, float* out);
void dot_tile(const float* W, int64_t ldw, int n_rows, const float* X, int64_t ldx, int n_tokens, int64_t n, float* Y,
              int64_t ldy);
// Rows a caller widens to f32 at a time for dot_tile: a multiple of every ISA's tile
// height (3 and 4), small enough to stay in L2 beside a few tokens.
constexpr int64_t kTileRowBlock = 12;

// Y[t * rows + r] = dot(F32, row_r, X[t]) for a prompt of n_tokens: X's tokens are laid out
// once, then threads take blocks of kTileRowBlock rows, widen each row to f32 once
// (`widen(r, scratch)` returns row r as f32, in `scratch` of `cols` floats or elsewhere) and
// multiply the block with every token in register tiles. Serves every weight format whose
// rows can be widened: the f16/bf16/f32 matmul and the bit-plane dequantization.
template <class WidenRow>
void matmul_widened_rows(int64_t rows, int64_t cols, const float* X, int n_tokens, float* Y, WidenRow widen) {
  std::vector<float> xs(size_t(n_tokens) * size_t(cols));
  for (int t = 0; t < n_tokens; ++t) tile_layout(X + int64_t(t) * cols, cols, xs.data() + int64_t(t) * cols);
  const int64_t blocks = (rows + kTileRowBlock - 1) / kTileRowBlock;
#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(cols)), block(static_cast<size_t>(kTileRowBlock * cols));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kTileRowBlock, n = std::min(kTileRowBlock, rows - r0);
      for (int64_t i = 0; i < n; ++i) tile_layout(widen(r0 + i, scratch.data()), cols, block.data() + i * cols);
      dot_tile(block.data(), cols, int(n), xs.data(), cols, n_tokens, cols, Y + r0, rows);
    }
  }
}

// Whether a one-token product that reads `bytes` is worth splitting across threads: waking
// the team and joining it costs microseconds, more than the whole of a small matrix.
// The bound: 64 KB unless PMPD_PAR_MIN_BYTES says otherwise (0: a team for every product);
// never with one OpenMP thread. Callers that get false run their loop without entering a
// parallel region at all: even a region of one thread ends in a futex wake system call in
// libgomp (~34 a token on pmpd-tiny, ~1 us each on the 2-core VM of docs/results.md).
bool worth_threads(size_t bytes);
size_t min_parallel_bytes();
void set_min_parallel_bytes(size_t bytes);

// Y[t, r] = sum_c W[r, c] * X[t, c] for t < n_tokens; W is {rows, cols}.
// Threads split the rows; each row is read from memory once for all tokens.
void matmul(const TensorView& W, const float* X, int n_tokens, float* Y);

}  // namespace pmpd::kernels
