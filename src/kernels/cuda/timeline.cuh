// Per-block timestamps inside the decode step's kernels (a diagnostic): where a step's time
// goes between kernels and inside each (start-up, wait on the kernel before, x staged, items,
// tail). Compiled in only with -DPMPD_CUDA_TIMELINE=ON (tools/gpu/timeline.sh builds that
// variant): the marks change the kernels' code, so production builds carry none and these
// macros expand to nothing.
//
// In a kernel: PMPD_TIMELINE_BEGIN(kind, bits, key) once at its start (thread 0 takes a record),
// then PMPD_TIMELINE_MARK(i) at the points of interest, in the kernel or a function it calls
// (thread 0's view: after a barrier it is the block's). Each translation unit that marks includes this header once and calls
// PMPD_TIMELINE_UNIT(name) at namespace scope, which defines its record pointer and the host
// function timeline_bind_<name> that cuda_model.cpp calls (timeline.h).
#pragma once
#include <cstdint>

#include "kernels/cuda/timeline.h"

#ifdef PMPD_CUDA_TIMELINE
namespace pmpd::cuda::timeline_device {
__device__ __forceinline__ uint64_t now() {
  uint64_t t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ uint32_t sm_id() {
  uint32_t s;
  asm volatile("mov.u32 %0, %smid;" : "=r"(s));
  return s;
}
}  // namespace pmpd::cuda::timeline_device

#define PMPD_TIMELINE_UNIT(name)                                                                         \
  namespace {                                                                                            \
  __device__ ::pmpd::cuda::timeline::Record* timeline_records;                                           \
  __device__ uint32_t* timeline_count;                                                                   \
  __device__ uint32_t timeline_capacity;                                                                 \
  /* thread 0's record in this block (helpers called by a kernel mark it too) */                         \
  __shared__ ::pmpd::cuda::timeline::Record* timeline_rec;                                               \
  }                                                                                                      \
  void timeline_bind_##name(::pmpd::cuda::timeline::Record* r, uint32_t* count, uint32_t capacity) {     \
    cudaMemcpyToSymbol(timeline_records, &r, sizeof r);                                                  \
    cudaMemcpyToSymbol(timeline_count, &count, sizeof count);                                            \
    cudaMemcpyToSymbol(timeline_capacity, &capacity, sizeof capacity);                                   \
  }

// Thread 0 stamps mark 0, then claims a record (none when unbound or full): the clock is read
// before the claim's round trip through device memory, so mark 0 is the block's start, not its
// start plus that trip.
#define PMPD_TIMELINE_BEGIN(kind_, bits_, key_)                                                          \
  if (threadIdx.x == 0) {                                                                                \
    const uint64_t timeline_start = ::pmpd::cuda::timeline_device::now();                                \
    timeline_rec = nullptr;                                                                              \
    const uint32_t slot = timeline_records ? atomicAdd(timeline_count, 1u) : ~0u;                        \
    if (slot < timeline_capacity) {                                                                      \
      timeline_rec = timeline_records + slot;                                                            \
      timeline_rec->key = uint64_t(key_), timeline_rec->kind = uint32_t(kind_), timeline_rec->bits = bits_; \
      timeline_rec->block = blockIdx.x + gridDim.x * blockIdx.y;                                         \
      timeline_rec->sm = ::pmpd::cuda::timeline_device::sm_id();                                         \
      timeline_rec->t[0] = timeline_start;                                                               \
    }                                                                                                    \
  }
// Mark i by thread `thread` (0: the block's view after a barrier; another, e.g. the block's last
// busy warp's first, for that warp's own progress).
#define PMPD_TIMELINE_MARK_BY(i, thread)                                                                 \
  do {                                                                                                   \
    if (threadIdx.x == uint32_t(thread) && timeline_rec) timeline_rec->t[i] = ::pmpd::cuda::timeline_device::now(); \
  } while (0)
#define PMPD_TIMELINE_MARK(i) PMPD_TIMELINE_MARK_BY(i, 0)
// Mark i by thread `thread` once its register `word`, loaded from memory before, has arrived: a
// volatile shared-memory store of it (which cannot issue before the load returns) precedes the
// stamp. It holds that thread's warp until then: use it where the warp would wait for the value
// next anyway.
#define PMPD_TIMELINE_MARK_ARRIVED_BY(i, word, thread)                                                   \
  do {                                                                                                   \
    __shared__ uint32_t timeline_sink;                                                                   \
    if (threadIdx.x == uint32_t(thread) && timeline_rec) {                                               \
      asm volatile("st.volatile.shared.u32 [%0], %1;" ::"r"(uint32_t(__cvta_generic_to_shared(&timeline_sink))), \
                   "r"(uint32_t(word))                                                                   \
                   : "memory");                                                                          \
      timeline_rec->t[i] = ::pmpd::cuda::timeline_device::now();                                         \
    }                                                                                                    \
  } while (0)
#define PMPD_TIMELINE_MARK_ARRIVED(i, word) PMPD_TIMELINE_MARK_ARRIVED_BY(i, word, 0)
#else
#define PMPD_TIMELINE_UNIT(name)
#define PMPD_TIMELINE_BEGIN(kind_, bits_, key_)
#define PMPD_TIMELINE_MARK_BY(i, thread) \
  do {                                   \
  } while (0)
#define PMPD_TIMELINE_MARK(i) PMPD_TIMELINE_MARK_BY(i, 0)
#define PMPD_TIMELINE_MARK_ARRIVED_BY(i, word, thread) \
  do {                                                 \
  } while (0)
#define PMPD_TIMELINE_MARK_ARRIVED(i, word) PMPD_TIMELINE_MARK_ARRIVED_BY(i, word, 0)
#endif
