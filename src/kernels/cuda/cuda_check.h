// Error handling for CUDA code. The .cu files stay free of fmt (nvcc need not parse it):
// failures go through cuda_fail(), defined in C++, which throws pmpd::Error.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace pmpd::cuda {

[[noreturn]] void cuda_fail(const char* what, const char* detail, const char* file, int line);
// A failed device allocation of `bytes`, as an error that names its size in MiB.
[[noreturn]] void cuda_out_of_memory(size_t bytes);
// Streaming multiprocessors of the current device (asked once).
int multiprocessor_count();
// Whether kernels start as programmatic dependents of the one before them (launch.cuh);
// PMPD_CUDA_PDL=0 turns it off, to measure what it gains.
bool chained_launches();

}  // namespace pmpd::cuda

#define PMPD_CUDA_CHECK(call)                                                                  \
  do {                                                                                         \
    cudaError_t pmpd_err_ = (call);                                                            \
    if (pmpd_err_ != cudaSuccess) ::pmpd::cuda::cuda_fail(#call, cudaGetErrorString(pmpd_err_), \
                                                          __FILE__, __LINE__);                 \
  } while (0)

namespace pmpd::cuda {
// Seconds per call of `step` (which enqueues work on `stream`) over `reps` calls after one
// warm-up call: the GPU's time between two events on the stream, not the host's.
template <class Step>
double seconds_per_call(cudaStream_t stream, int reps, Step&& step) {
  step();
  cudaEvent_t e0, e1;
  PMPD_CUDA_CHECK(cudaEventCreate(&e0));
  PMPD_CUDA_CHECK(cudaEventCreate(&e1));
  PMPD_CUDA_CHECK(cudaEventRecord(e0, stream));
  for (int r = 0; r < reps; ++r) step();
  PMPD_CUDA_CHECK(cudaEventRecord(e1, stream));
  PMPD_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  PMPD_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  return double(ms) * 1e-3 / reps;
}
}  // namespace pmpd::cuda

// A precondition inside CUDA host code; `msg` is a plain string.
#define PMPD_CUDA_REQUIRE(cond, msg)                                          \
  do {                                                                        \
    if (!(cond)) ::pmpd::cuda::cuda_fail(msg, nullptr, __FILE__, __LINE__);    \
  } while (0)
