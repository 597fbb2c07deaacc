// The timeline's capture (timeline.h): binds one device buffer to every marking unit.
#include "kernels/cuda/timeline.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "kernels/cuda/cuda_check.h"

namespace pmpd::cuda {
#ifdef PMPD_CUDA_TIMELINE
// Defined by PMPD_TIMELINE_UNIT in the units that mark.
void timeline_bind_pair_lut_gemv(timeline::Record*, uint32_t*, uint32_t);
void timeline_bind_attention_decode(timeline::Record*, uint32_t*, uint32_t);
#endif

namespace timeline {
namespace {
Record* records = nullptr;
uint32_t* count = nullptr;
uint32_t allocated = 0;

void bind(Record* r, uint32_t* c, uint32_t capacity) {
#ifdef PMPD_CUDA_TIMELINE
  timeline_bind_pair_lut_gemv(r, c, capacity);
  timeline_bind_attention_decode(r, c, capacity);
#else
  (void)r, (void)c, (void)capacity;
#endif
}
}  // namespace

bool compiled() {
#ifdef PMPD_CUDA_TIMELINE
  return true;
#else
  return false;
#endif
}

void begin_capture(uint32_t capacity) {
  if (!compiled()) return;
  PMPD_CUDA_CHECK(cudaDeviceSynchronize());
  if (capacity > allocated) {
    if (records) cudaFree(records), cudaFree(count);
    PMPD_CUDA_CHECK(cudaMalloc(&records, sizeof(Record) * capacity));
    PMPD_CUDA_CHECK(cudaMalloc(&count, sizeof(uint32_t)));
    allocated = capacity;
  }
  PMPD_CUDA_CHECK(cudaMemset(records, 0, sizeof(Record) * allocated));
  PMPD_CUDA_CHECK(cudaMemset(count, 0, sizeof(uint32_t)));
  bind(records, count, allocated);
  PMPD_CUDA_CHECK(cudaDeviceSynchronize());
}

std::vector<Record> end_capture() {
  if (!compiled() || !records) return {};
  PMPD_CUDA_CHECK(cudaDeviceSynchronize());
  uint32_t n = 0;
  PMPD_CUDA_CHECK(cudaMemcpy(&n, count, sizeof n, cudaMemcpyDeviceToHost));
  std::vector<Record> out(std::min(n, allocated));
  PMPD_CUDA_CHECK(cudaMemcpy(out.data(), records, sizeof(Record) * out.size(), cudaMemcpyDeviceToHost));
  bind(nullptr, nullptr, 0);
  PMPD_CUDA_CHECK(cudaDeviceSynchronize());
  if (n > allocated) std::fprintf(stderr, "timeline: %u blocks, only the first %u recorded\n", n, allocated);
  return out;
}

void write_csv(const std::string& path, const std::vector<Record>& records) {
  uint64_t t0 = ~uint64_t(0);
  for (const Record& r : records)
    if (r.t[0]) t0 = std::min(t0, r.t[0]);
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("timeline: cannot write " + path);
  std::fprintf(f, "kind,bits,key,block,sm");
  for (int i = 0; i < kMarks; ++i) std::fprintf(f, ",t%d", i);
  std::fprintf(f, "\n");
  for (const Record& r : records) {
    std::fprintf(f, "%u,%u,%llu,%u,%u", r.kind, r.bits, static_cast<unsigned long long>(r.key), r.block, r.sm);
    for (int i = 0; i < kMarks; ++i)
      std::fprintf(f, ",%lld", r.t[i] ? static_cast<long long>(r.t[i] - t0) : -1LL);
    std::fprintf(f, "\n");
  }
  std::fclose(f);
}

}  // namespace timeline
}  // namespace pmpd::cuda
