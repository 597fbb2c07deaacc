#include "quant/dense_sparse.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace pmpd::quant {

SparseOutliers select_outliers(const float* W, int64_t rows, int64_t cols, const float* sens, double fraction,
                               double sensitive_fraction) {
  const int64_t n = rows * cols;
  const int64_t total = std::min<int64_t>(n, int64_t(std::llround(fraction * double(n))));
  const int64_t by_sens = std::min<int64_t>(total, int64_t(std::llround(sensitive_fraction * double(n))));
  std::vector<uint8_t> keep(static_cast<size_t>(n), 0);
  std::vector<int64_t> idx;
  auto top = [&](int64_t count, auto score) {
    if (count <= 0) return;
    idx.resize(0);
    for (int64_t i = 0; i < n; ++i)
      if (!keep[size_t(i)]) idx.push_back(i);
    count = std::min<int64_t>(count, int64_t(idx.size()));
    std::nth_element(idx.begin(), idx.begin() + count - 1, idx.end(),
                     [&](int64_t a, int64_t b) { return score(a) > score(b) || (score(a) == score(b) && a < b); });
    for (int64_t i = 0; i < count; ++i) keep[size_t(idx[size_t(i)])] = 1;
  };
  top(by_sens, [&](int64_t i) { return double(sens[i % cols]) * double(W[i]) * double(W[i]); });
  top(total - by_sens, [&](int64_t i) { return std::fabs(double(W[i])); });
  SparseOutliers s;
  s.rowptr.assign(size_t(rows + 1), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j)
      if (keep[size_t(r * cols + j)]) {
        s.col.push_back(int32_t(j));
        s.val.push_back(W[r * cols + j]);
      }
    s.rowptr[size_t(r + 1)] = int32_t(s.col.size());
  }
  return s;
}

double sparse_bits_per_weight(int64_t nnz, int64_t rows, int64_t cols) {
  return (double(nnz) * (16 + 32) + double(rows + 1) * 32) / double(rows * cols);
}

}  // namespace pmpd::quant
