// What a boundary between two dependent steps of a decode costs on the device (sync_costs.cu):
// what `pmpd bench --sync-costs` prints. Plain C++, so builds without CUDA see it too.
#pragma once
#include <cstdint>
#include <vector>

namespace pmpd::cuda {

// A chain of `phases` dependent phases, each a grid of one 512-thread block an SM that streams
// its share of a weight buffer (`bytes_per_block`, from device memory), then reads the whole
// output of the phase before (a dependent round trip, as a GEMV reads x) and writes its share
// of its own. Run three ways: a kernel a phase chained with PDL in a CUDA graph (the decode
// step's way: one block an SM, so a phase's block starts only when the one before on its SM
// exits); the same with blocks small enough for two an SM, so a phase's blocks start, and
// stream their weights, while the phase before runs (what a GEMV of half the registers and
// shared memory would get); one persistent kernel whose phases meet at a grid barrier.
// Two diagnostics split the persistent way's phase into its parts (stop 39): the phases
// without the barrier (each block's dependent read and write alone; outputs wrong, unchecked)
// and with the barrier but without the dependent read (the wait alone).
enum class SyncWay { Chained, ChainedTwoAnSm, Persistent, PersistentNoBarrier, PersistentBarrierOnly };
inline constexpr SyncWay kSyncWays[] = {SyncWay::Chained, SyncWay::ChainedTwoAnSm, SyncWay::Persistent,
                                        SyncWay::PersistentNoBarrier, SyncWay::PersistentBarrierOnly};
inline constexpr SyncWay kCheckedSyncWays[] = {SyncWay::Chained, SyncWay::ChainedTwoAnSm, SyncWay::Persistent};
struct SyncCost {
  SyncWay way = SyncWay::Chained;
  long long bytes_per_block = 0;
  int blocks = 0, phases = 0;
  double seconds_per_phase = 0;
};
std::vector<SyncCost> measure_sync_costs(const std::vector<long long>& bytes_per_block, int phases);

// Clusters of `cluster_size` blocks that each take a whole SM (as the streaming GEMV's) that
// the device holds at once: how many head-sized clusters a fused kernel could run side by side
// (cluster blocks must share a GPC, so this can be fewer than SMs / cluster_size); -1 where
// the device refuses the size.
int max_resident_clusters(int cluster_size);

// The same chain once each checked way (kCheckedSyncWays' order) on `per_block` 32-bit words a block a phase, with small weight
// streams, returning every phase's output (phases x blocks x per_block words): word i of
// phase p is the wrapping sum of the words before (phase p - 1's; before phase 0, word i is i)
// plus 7 i + p. A phase that read its input before every block of the phase before had
// written it would show.
struct SyncChainOutputs {
  int blocks = 0;
  std::vector<std::vector<uint32_t>> outputs;  // one a way
};
SyncChainOutputs run_sync_chain(int phases, int per_block);

}  // namespace pmpd::cuda
