// Dense-and-sparse decomposition (SqueezeLLM's DNS): the most sensitive weights and the
// largest-magnitude outliers are kept exactly in a sparse matrix; the dense remainder is
// quantized with those positions given zero weight.
#pragma once
#include <cstdint>
#include <vector>

namespace pmpd::quant {

struct SparseOutliers {
  std::vector<int32_t> rowptr;  // rows + 1
  std::vector<int32_t> col;     // column of each outlier, ascending within a row
  std::vector<float> val;       // its exact value
};

// W: rows x cols (row-major, f32); sens: per-column sensitivity. Keeps `fraction` of all
// weights: first the `sensitive_fraction` with the largest sens_j * w^2, then the
// largest |w| among the rest.
SparseOutliers select_outliers(const float* W, int64_t rows, int64_t cols, const float* sens, double fraction,
                               double sensitive_fraction = 0.0005);

// Bits per weight of the sparse part: (16-bit value + 32-bit column) per outlier plus
// the 32-bit row pointers, spread over all rows*cols weights.
double sparse_bits_per_weight(int64_t nnz, int64_t rows, int64_t cols);

}  // namespace pmpd::quant
