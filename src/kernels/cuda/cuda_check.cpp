#include "kernels/cuda/cuda_check.h"

#include "core/error.h"

namespace pmpd::cuda {

void cuda_fail(const char* what, const char* detail, const char* file, int line) {
  if (detail) fail("CUDA: {} failed: {} ({}:{})", what, detail, file, line);
  fail("CUDA: {} ({}:{})", what, file, line);
}

}  // namespace pmpd::cuda
