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

// Y[t, r] = sum_c W[r, c] * X[t, c] for t < n_tokens; W is {rows, cols}.
// Threads split the rows; each row is read from memory once for all tokens.
void matmul(const TensorView& W, const float* X, int n_tokens, float* Y);

}  // namespace pmpd::kernels
