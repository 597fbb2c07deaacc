// Host-side launch helpers shared by the kernels' .cu files.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <type_traits>
#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace pmpd::cuda {

// Calls f(std::integral_constant<int, B>{}) with B = bits, for the kernels templated on the
// width: B runs over Lo..8 (the callers checked the range; past 8 takes 8).
template <int Lo = 1, class F>
auto with_width(int bits, F&& f) {
  if constexpr (Lo < 8) {
    if (bits <= Lo) return f(std::integral_constant<int, Lo>{});
    return with_width<Lo + 1>(bits, std::forward<F>(f));
  } else {
    return f(std::integral_constant<int, 8>{});
  }
}

// Raises `Kernel`'s dynamic shared-memory limit to `smem` where it needs more than the
// default 48 KiB (once per kernel and size).
template <auto Kernel>
void allow_dynamic_smem(size_t smem) {
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    PMPD_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    raised = smem;
  }
}

// Blocks of `Kernel` that fit on one SM with `threads` threads and `smem` bytes of dynamic
// shared memory (the limit raised first; asked once per kernel and size).
template <auto Kernel>
int blocks_per_sm(int threads, size_t smem) {
  allow_dynamic_smem<Kernel>(smem);
  static size_t asked_smem = 0;
  static int per_sm = 0;
  if (smem != asked_smem) {
    PMPD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, threads, smem));
    asked_smem = smem;
  }
  return per_sm;
}

// cudaLaunchKernelEx with the attributes the launches below ask for: PDL (where
// chained_launches() and not cooperative), a cluster shape other than 1x1x1, cooperative.
template <typename... Params, typename... Args>
void launch_with(void (*kernel)(Params...), dim3 grid, dim3 block, dim3 cluster, bool cooperative, size_t smem,
                 cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid, config.blockDim = block, config.dynamicSmemBytes = smem, config.stream = stream;
  cudaLaunchAttribute attribute[3];
  int n = 0;
  if (chained_launches() && !cooperative) {
    attribute[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster.x * cluster.y * cluster.z > 1) {
    attribute[n].id = cudaLaunchAttributeClusterDimension;
    attribute[n].val.clusterDim.x = cluster.x, attribute[n].val.clusterDim.y = cluster.y;
    attribute[n++].val.clusterDim.z = cluster.z;
  }
  if (cooperative) {
    attribute[n].id = cudaLaunchAttributeCooperative;
    attribute[n++].val.cooperative = 1;
  }
  config.attrs = attribute, config.numAttrs = unsigned(n);
  PMPD_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

// Launches `kernel` as a programmatic dependent of the kernel before it on the stream
// (Hopper's PDL; kept in captured graphs): its blocks may start while that kernel's last
// blocks still run, doing what needs none of that kernel's output (fetching weights) until
// they call dev::wait_for_producer(). A decode step is a chain of ~10 small kernels per
// layer, so this hides most of each launch's ramp-up. Every kernel launched this way must
// wait before it reads or writes memory that kernels before it touch. A `cluster` other
// than 1x1x1 groups the blocks into thread-block clusters of that shape (their shared
// memory readable by one another).
template <typename... Params, typename... Args>
void launch_chained_clusters(void (*kernel)(Params...), dim3 grid, dim3 block, dim3 cluster, size_t smem,
                             cudaStream_t stream, Args&&... args) {
  launch_with(kernel, grid, block, cluster, false, smem, stream, std::forward<Args>(args)...);
}
// A cooperative launch (not chained): fails, rather than hangs, where the grid cannot be
// resident all at once, as a kernel with a grid barrier (dev::grid_barrier) needs.
template <typename... Params, typename... Args>
void launch_cooperative(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        Args&&... args) {
  launch_with(kernel, grid, block, dim3(1, 1, 1), true, smem, stream, std::forward<Args>(args)...);
}
template <typename... Params, typename... Args>
void launch_chained(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                    Args&&... args) {
  launch_chained_clusters(kernel, grid, block, dim3(1, 1, 1), smem, stream, std::forward<Args>(args)...);
}

}  // namespace pmpd::cuda
