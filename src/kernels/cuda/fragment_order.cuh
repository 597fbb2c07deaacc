// The order in which the tensor-core GEMV (pair_lut_gemv.cu) keeps its input x in shared
// memory: f16 in mma B-fragment order. Kernels that produce a GEMV's input (the gate|up
// GEMV for the down projection, the decode attention for the output projection) write it
// in this order, so that the GEMV's blocks copy it as it is instead of each converting it.
#pragma once
#include <cstdint>

namespace pmpd::cuda {

// x (after the prologue) as f16 in mma B-fragment order: for column col (k-block
// kb = col / 16, kk = col % 16, t = kk % 8 / 2, hh = kk / 8), the 16-byte slot
// (kb / 2) * 4 + t holds lane t's B registers (b0, b1) of k-blocks 2 (kb / 2) and
// 2 (kb / 2) + 1: b0 = the pair at column 2t, b1 = the pair at 2t + 8. Lanes of one t
// read the same slot (a broadcast), so one 16-byte load feeds two mma. Returns the
// column's half position.
__host__ __device__ __forceinline__ int x_slot(int64_t col) {
  const int kb = int(col >> 4), kk = int(col & 15);
  return (((kb >> 1) * 4 + ((kk & 7) >> 1)) * 4 + (kb & 1) * 2 + (kk >> 3)) * 2 + (kk & 1);
}

}  // namespace pmpd::cuda
