// Device helpers shared by the CUDA kernels: launch chaining, warp and block reductions,
// activations, reading one code from the on-disk bit planes.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"

namespace pmpd::cuda::dev {

// Programmatic dependent launch (launch.cuh). A kernel may run ahead of the one before it
// on the stream until wait_for_producer(), which returns once that kernel has finished and
// its writes are visible (at once where the launch was not chained); let_next_start()
// allows the next kernel's blocks to be scheduled as soon as SMs free up.
__device__ __forceinline__ void wait_for_producer() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void let_next_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// Start of a kernel that reads or writes what earlier kernels touch right away.
__device__ __forceinline__ void chained_start() {
  let_next_start();
  wait_for_producer();
}

// Loads with acquire at device scope: what the writer released before is visible after.
__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Adds 1 to *counter at device scope and returns the value before: a release of what this
// thread wrote or saw ordered before it, and an acquire of what those counted in before wrote
// (the column slices' meeting, pair_lut_gemv.cu; lighter than __threadfence on both sides,
// stop 33: +0.4..0.5% end to end on Vicuna-7B at 3 bits).
__device__ __forceinline__ unsigned count_in_acq_rel(unsigned* counter) {
  unsigned old;
  asm volatile("atom.add.acq_rel.gpu.global.u32 %0, [%1], 1;\n" : "=r"(old) : "l"(counter) : "memory");
  return old;
}

// A barrier of the whole grid, for kernels whose blocks are all resident at once (one block an
// SM and a grid of at most the SMs, or a cooperative launch), on one word that is zero before
// the first use. Each block arrives with one atomic and no reset: block 0 adds 2^31 - (n - 1)
// and every other block 1, so the n arrivals add exactly 2^31 and the word's top bit flips when,
// and only when, the last one lands (a block arriving early at the next barrier cannot flip it
// back: that needs all n again). One device-scope round trip a block instead of the three of a
// count-and-generation barrier (arrive, reset, publish; stop 26: +1.2..1.8 us a phase over a
// PDL kernel chain in `pmpd bench --sync-costs`). Release and acquire at device scope: what a
// block wrote before it arrived is what the others read after they leave.
__device__ __forceinline__ void grid_barrier(unsigned* barrier) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned blocks = gridDim.x * gridDim.y * gridDim.z;
    const bool first = (blockIdx.x | blockIdx.y | blockIdx.z) == 0;
    const unsigned add = first ? 0x80000000u - (blocks - 1) : 1u;
    unsigned old;
    asm volatile("atom.add.release.gpu.global.u32 %0, [%1], %2;\n" : "=r"(old) : "l"(barrier), "r"(add) : "memory");
    while (((old ^ load_acquire(barrier)) & 0x80000000u) == 0) {
    }
  }
  __syncthreads();
}

// Brings the line holding p into L1 (data needed after a wait that does not depend on it).
__device__ __forceinline__ void prefetch_l1(const void* p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }
// Brings the line holding p into L2 (data read again soon, e.g. a later item's weights).
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// Global -> shared copies that hold no register (cp.async): Bytes (4, 8 or 16) from src to
// dst, both aligned to Bytes, or zeros where !valid. Complete after copy_async_wait_all().
template <int Bytes>
__device__ __forceinline__ void copy_async(void* dst, const void* src, bool valid) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  const uint32_t d = uint32_t(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(Bytes), "r"(valid ? Bytes : 0)
               : "memory");
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void copy_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
// Waits until at most `Pending` of this thread's committed groups are still in flight.
template <int Pending>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

// Shared-memory barriers that a thread arrives at and waits on apart (mbarrier, sm_80+): the
// 4-bit streaming GEMV's table slots (a warp arrives when done with a slot, and waits before
// it overwrites it, a task later). Arrival releases and the wait acquires, at the block's scope.
__device__ __forceinline__ void barrier_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(uint32_t(__cvta_generic_to_shared(bar))), "r"(count) : "memory");
}
__device__ __forceinline__ void barrier_arrive(uint64_t* bar) {
  asm volatile("{\n .reg .b64 state;\n mbarrier.arrive.shared.b64 state, [%0];\n}" ::"r"(
                   uint32_t(__cvta_generic_to_shared(bar)))
               : "memory");
}
// Waits until the barrier's phase of this parity (0 for its first completion, 1 for its second,
// ...) has completed.
__device__ __forceinline__ void barrier_wait(uint64_t* bar, unsigned parity) {
  const uint32_t address = uint32_t(__cvta_generic_to_shared(bar));
  uint32_t done = 0;
  while (!done)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900  // a wait that may suspend the warp a while
    asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done)
                 : "r"(address), "r"(parity)
                 : "memory");
#else
    asm volatile("{\n .reg .pred p;\n mbarrier.test_wait.parity.shared.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done)
                 : "r"(address), "r"(parity)
                 : "memory");
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduction over the block (blockDim.x a multiple of 32); every thread gets the result.
template <bool Max>
__device__ float block_reduce(float v) {
  __shared__ float part[32];
  __shared__ float total;
  v = Max ? warp_max(v) : warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < warps ? part[lane] : (Max ? -INFINITY : 0.f);
    s = Max ? warp_max(s) : warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}
__device__ __forceinline__ float block_sum(float v) { return block_reduce<false>(v); }
__device__ __forceinline__ float block_max(float v) { return block_reduce<true>(v); }

// The first largest of a row of values (the lowest index among equals, as std::max_element
// picks on the host; NaN never wins): the greedy token, and where sampling's softmax starts.
struct FirstMax {
  float best = -INFINITY;
  int at;  // an index past the row's end: no candidate yet
  __device__ explicit FirstMax(int past_end) : at(past_end) {}
  __device__ __forceinline__ void take(float v, int i) {
    if (v > best || (v == best && i < at)) best = v, at = i;
  }
  // Every lane ends with its warp's first largest.
  __device__ __forceinline__ void take_warp() {
    for (int o = 16; o > 0; o >>= 1) take(__shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, at, o));
  }
  // Every thread ends with the block's (blockDim.x a multiple of 32, at most 1024).
  __device__ void take_block() {
    __shared__ float wb[32];
    __shared__ int wa[32];
    take_warp();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // a call before may still read wb / wa
    if (lane == 0) wb[warp] = best, wa[warp] = at;
    __syncthreads();
    for (int w = 0; w < int(blockDim.x) / 32; ++w) take(wb[w], wa[w]);
  }
};

// act 0: SiLU, 1: GELU (tanh approximation), as kernels/cpu/ops.cpp computes them. `fast`
// takes the hardware exponential and reciprocal (a few ulps; for values rounded to f16 next).
__device__ __forceinline__ float activation(float g, int act, bool fast = false) {
  if (act == 0) return fast ? g * __frcp_rn(1.f + __expf(-g)) : g / (1.f + expf(-g));
  const float k = 0.7978845608028654f;
  return 0.5f * g * (1.f + tanhf(k * (g + 0.044715f * g * g * g)));
}

// The b-bit code of weight (r, j), read from the planes in their on-disk layout (slow: the
// DNS outlier corrections use it, a few per row).
__device__ __forceinline__ int code_at(const DeviceBitPlanes& m, int bits, int64_t r, int64_t j) {
  int code = 0;
  for (int k = 0; k < bits; ++k)
    code = (code << 1) | ((m.planes[(size_t(k) * m.rows + r) * m.plane_stride + (j >> 3)] >> (j & 7)) & 1);
  return code;
}

}  // namespace pmpd::cuda::dev
