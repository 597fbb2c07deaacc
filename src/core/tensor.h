// A view of a tensor stored elsewhere (usually in a memory-mapped file). Shapes are
// row-major, outermost first: a linear layer's weight is {out_features, in_features}.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace pmpd {

struct TensorView {
  std::string name;
  DType dtype = DType::Unknown;
  std::vector<int64_t> shape;
  const void* data = nullptr;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t nbytes() const { return dtype_bytes(dtype, numel()); }
  int64_t rows() const { return shape.empty() ? 0 : shape.size() == 1 ? 1 : shape[0]; }
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
  // Row r of a 2-D tensor: rows are contiguous, so a row range is a zero-copy view.
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r) * dtype_bytes(dtype, cols());
  }
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace pmpd
