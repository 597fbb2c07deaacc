// Host-side launch helpers shared by the kernels' .cu files.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/cuda_check.h"

namespace pmpd::cuda {

// Blocks of `Kernel` that fit on one SM with `threads` threads and `smem` bytes of dynamic
// shared memory, raising the kernel's shared-memory limit above the default 48 KiB first
// where it needs more. Both are asked once per kernel and size.
template <auto Kernel>
int blocks_per_sm(int threads, size_t smem) {
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    PMPD_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    raised = smem;
  }
  static size_t asked_smem = 0;
  static int per_sm = 0;
  if (smem != asked_smem) {
    PMPD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, threads, smem));
    asked_smem = smem;
  }
  return per_sm;
}

}  // namespace pmpd::cuda
