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

// The GEMV itself (pair_lut_gemv, RMSNorm prologue, as for q|k|v) on random tiles of
// `rows` x `cols` at `bits`, chained back to back as in a decode step, cycling through
// copies that together exceed the L2 cache: the time of one GEMV. Fitting time against
// bytes over several row counts separates a fixed cost per GEMV from the streaming rate.
struct GemvScaling {
  int bits = 0;
  long long rows = 0, cols = 0;
  double bytes = 0, seconds = 0;  // bytes: the tiles' planes read (tables not counted)
};
std::vector<GemvScaling> measure_gemv_scaling(int bits, long long cols, const std::vector<long long>& rows);

}  // namespace pmpd::cuda
