// e^x for f32 vectors, the softmax's and the activations' exponential. One algorithm on every
// ISA: glibc's expf as its x86-64 FMA build runs it (x * 32 / ln 2 split into k + r with r in
// [-1/2, 1/2], 2^(k/32) from a 32-entry table, a cubic in r, all in double, one rounding to
// f32 at the end; correctly rounded for nearly every input). The AVX-512 and AVX2 forms take 16
// and 8 lanes a step with the same operations, so every ISA gives the same bits, and on the
// x86-64 machines this project runs on they are libm's `expf` bits too (tested over all 2^32
// inputs), so switching from std::exp changed no result.
#pragma once

namespace pmpd::kernels {

float exp_scalar(float x);
// x[i] = e^x[i] for i < n (on the active ISA's vectors).
void exp_inplace(float* x, int n);

}  // namespace pmpd::kernels
