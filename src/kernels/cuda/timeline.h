// Host side of the kernels' timeline (timeline.cuh): the record layout and one capture around
// a decode step. Only a build with -DPMPD_CUDA_TIMELINE=ON records anything; elsewhere
// compiled() is false and capture() returns no records.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pmpd::cuda::timeline {

constexpr int kMarks = 15;
// What wrote a record (its `kind`) and what its marks mean: docs/cuda.md, "Timeline".
enum Kind : uint32_t { StreamGemv = 1, TaskLoopGemv = 2, DecodeAttention = 3 };

struct Record {
  uint64_t key = 0;  // the matrix (its tiles' address) or the layer's KV cache
  uint32_t kind = 0, block = 0, sm = 0, bits = 0;
  uint64_t t[kMarks] = {};  // %globaltimer in ns, 0 where a mark was not reached
};

bool compiled();
// Clears the records; the kernels record until end_capture() (at most `capacity` blocks).
void begin_capture(uint32_t capacity = 1u << 17);
// Waits for the device, returns the records and stops recording.
std::vector<Record> end_capture();
// One line a record: kind,bits,key,block,sm,t0..t14 (ns after the earliest t0; -1: no mark).
void write_csv(const std::string& path, const std::vector<Record>& records);

}  // namespace pmpd::cuda::timeline
