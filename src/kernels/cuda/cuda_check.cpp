#include "kernels/cuda/cuda_check.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace pmpd::cuda {

void cuda_fail(const char* what, const char* detail, const char* file, int line) {
  if (detail) fail("CUDA: {} failed: {} ({}:{})", what, detail, file, line);
  fail("CUDA: {} ({}:{})", what, file, line);
}

void cuda_out_of_memory(size_t bytes) {
  fail("CUDA: out of device memory allocating {:.1f} MiB", double(bytes) / (1 << 20));
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

bool chained_launches() {
  static const bool on = [] {
    const char* e = std::getenv("PMPD_CUDA_PDL");
    if (e && std::string(e) == "0") return false;
    int dev = 0, major = 0;  // programmatic launches need Hopper (compute capability 9) or later
    PMPD_CUDA_CHECK(cudaGetDevice(&dev));
    PMPD_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    return major >= 9;
  }();
  return on;
}

}  // namespace pmpd::cuda
