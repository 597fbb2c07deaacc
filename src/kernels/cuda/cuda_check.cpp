#include "kernels/cuda/cuda_check.h"

#include "core/error.h"

namespace pmpd::cuda {

void cuda_fail(const char* what, const char* detail, const char* file, int line) {
  if (detail) fail("CUDA: {} failed: {} ({}:{})", what, detail, file, line);
  fail("CUDA: {} ({}:{})", what, file, line);
}

int multiprocessor_count() {
  static int n = [] {
    int dev = 0, count = 0;
    PMPD_CUDA_CHECK(cudaGetDevice(&dev));
    PMPD_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev));
    return count;
  }();
  return n;
}

}  // namespace pmpd::cuda
