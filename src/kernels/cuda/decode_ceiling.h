// The tensor-core GEMV's decode alone, without the work around it (gemv_ceiling.cu):
// what `pmpd bench --gemv-ceiling` prints. Plain C++, so builds without CUDA see it too.
#pragma once
#include <vector>

namespace pmpd::cuda {

struct DecodeCeiling {
  int bits = 0;
  const char* feed = "";  // "shared": items from shared memory; "device": streamed from device memory;
                          // ", x in registers": one x chunk a warp, held in registers
  int warps = 0, blocks_per_sm = 0, group = 0;  // warps a block, blocks an SM, items a warp decodes side by side
  int registers = 0, local_bytes = 0;           // a thread's (local: spills)
  double weights_per_second = 0, bytes_per_second = 0;  // bytes: the items' plane words
};

// Every configuration at widths bits_lo..bits_hi (2..4: the pair-table decoder).
std::vector<DecodeCeiling> measure_decode_ceilings(int bits_lo, int bits_hi);

}  // namespace pmpd::cuda
