// Dot products and matrix-vector products over weights stored as f32, f16 or bf16,
// with f32 activations and f32 accumulation. A scalar reference exists for every
// kernel; AVX2 and AVX-512 versions are picked at run time (PMPD_ISA=scalar|avx2|avx512
// forces one, for tests and benchmarks).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace pmpd::kernels {

enum class Isa { Scalar, Avx2, Avx512 };

Isa active_isa();
void set_isa(Isa isa);  // clamps to what the CPU supports
const char* isa_name(Isa isa);

// dot(row, x) for a weight row of dtype `t` and length n.
float dot(DType t, const void* row, const float* x, int64_t n);
float dot_scalar(DType t, const void* row, const float* x, int64_t n);

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

// Y[t, r] = sum_c W[r, c] * X[t, c] for t < n_tokens; W is {rows, cols}.
// Threads split the rows; each row is read from memory once for all tokens.
void matmul(const TensorView& W, const float* X, int n_tokens, float* Y);

}  // namespace pmpd::kernels
