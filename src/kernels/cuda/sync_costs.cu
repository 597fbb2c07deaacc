// What a boundary between two dependent steps costs (a diagnostic for `pmpd bench
// --sync-costs`, docs/cuda.md). A decode step is a chain of kernels, each of whose blocks can
// start only when the block before it on its SM exits (one GEMV block holds an SM's register
// file), so every GEMV's start-up follows the tail of the one before. A persistent kernel
// would instead carry its blocks from one GEMV to the next through a grid barrier, fetching
// the next GEMV's weights before it; a GEMV of half the registers and shared memory would let
// the next kernel's blocks start beside it. Here the three ways run the same synthetic chain:
// each phase a block an SM (or two an SM, sharing it) that streams its share of a
// weight buffer, then reads the phase before's whole output (a dependent round trip, as a
// GEMV reads x) and writes its share of its own.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_array.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/sync_costs.h"

namespace pmpd::cuda {
namespace {

constexpr int kThreads = 512;
constexpr size_t kOneBlockSmem = 120 * 1024;  // more than half an SM's shared memory
constexpr size_t kTwoBlockSmem = 96 * 1024;   // two fit an SM (228 KiB), three do not

struct Chain {
  const uint4* weights;      // the weight buffer, `weight_words` uint4
  long long weight_words;    // (larger than L2: each phase's share comes from device memory)
  long long words_per_block; // streamed by a block a phase
  const uint32_t* input;     // before phase 0: blocks x per_block words
  uint32_t* out;             // phases x blocks x per_block words
  int per_block, phases;
  uint32_t* sink;            // the streamed words' XOR, so that the loads stay
  unsigned* barrier;         // dev::grid_barrier's word (zero before the first use)
};

// This block's share of phase p's weights, read evict-first as the GEMV reads its tiles.
__device__ uint32_t stream_weights(const Chain& c, int p) {
  uint32_t acc = 0;
  const long long first = (static_cast<long long>(p) * gridDim.x + blockIdx.x) * c.words_per_block;
  for (long long i = threadIdx.x; i < c.words_per_block; i += blockDim.x) {
    const uint4 w = __ldcs(c.weights + (first + i) % c.weight_words);
    acc ^= w.x ^ w.y ^ w.z ^ w.w;
  }
  return acc;
}

// Phase p's output from the phase before's (the dependent part): every block sums all of it.
__device__ void compute_phase(const Chain& c, int p) {
  __shared__ uint32_t partial[kThreads / 32];
  const int total = int(gridDim.x) * c.per_block;
  const uint32_t* in = p == 0 ? c.input : c.out + static_cast<size_t>(p - 1) * total;
  uint32_t s = 0;
  for (int i = threadIdx.x; i < total; i += blockDim.x) s += __ldcg(in + i);
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = s;
  __syncthreads();
  uint32_t sum = 0;
  for (int w = 0; w < int(blockDim.x) / 32; ++w) sum += partial[w];
  uint32_t* mine = c.out + static_cast<size_t>(p) * total + static_cast<size_t>(blockIdx.x) * c.per_block;
  for (int i = threadIdx.x; i < c.per_block; i += blockDim.x) {
    const uint32_t word = uint32_t(blockIdx.x) * uint32_t(c.per_block) + uint32_t(i);
    mine[i] = sum + 7u * word + uint32_t(p);
  }
  __syncthreads();  // `partial` is reused by the next phase
}

// A phase as its own kernel, chained to the one before (PDL): the weights before the wait.
// At most 64 registers a thread, so that two blocks fit an SM where the shared memory lets them.
__global__ void __launch_bounds__(kThreads, 2) chained_phase_kernel(Chain c, int p) {
  dev::let_next_start();
  const uint32_t acc = stream_weights(c, p);
  dev::wait_for_producer();
  compute_phase(c, p);
  if (acc == 0x9e3779b9u) c.sink[blockIdx.x] = acc;  // rarely true; keeps the loads
}

// Only this block's share of phase p's output, read from nothing (the barrier-only diagnostic).
__device__ void write_share(const Chain& c, int p) {
  const int total = int(gridDim.x) * c.per_block;
  uint32_t* mine = c.out + static_cast<size_t>(p) * total + static_cast<size_t>(blockIdx.x) * c.per_block;
  for (int i = threadIdx.x; i < c.per_block; i += blockDim.x) mine[i] = uint32_t(p);
}

// Every phase in one kernel: the next phase's weights before the barrier. barrier false: the
// phases unsynchronized (a diagnostic: what the dependent read and write cost alone); read
// false: the barrier without the dependent read.
__global__ void __launch_bounds__(kThreads, 1) persistent_chain_kernel(Chain c, bool barrier, bool read) {
  dev::wait_for_producer();
  uint32_t acc = 0;
  for (int p = 0; p < c.phases; ++p) {
    acc ^= stream_weights(c, p);
    if (p > 0 && barrier) dev::grid_barrier(c.barrier);
    if (read) compute_phase(c, p);
    else write_share(c, p);
  }
  if (acc == 0x9e3779b9u) c.sink[blockIdx.x] = acc;
}

// The chain's buffers, and its three ways of running on one stream.
class SyncChain {
 public:
  SyncChain(long long weight_bytes, int per_block, int phases)
      : blocks_(multiprocessor_count()),
        weights_(size_t(weight_bytes / 16)),
        input_(size_t(blocks_) * per_block),
        out_(size_t(phases) * blocks_ * per_block),
        sink_(size_t(blocks_)),
        barrier_(1) {
    PMPD_CUDA_CHECK(cudaMemset(weights_.get(), 0x5a, size_t(weight_bytes / 16) * sizeof(uint4)));
    std::vector<uint32_t> input(size_t(blocks_) * per_block);
    for (size_t i = 0; i < input.size(); ++i) input[i] = uint32_t(i);
    PMPD_CUDA_CHECK(cudaMemcpy(input_.get(), input.data(), input.size() * 4, cudaMemcpyHostToDevice));
    PMPD_CUDA_CHECK(cudaMemset(barrier_.get(), 0, sizeof(unsigned)));
    PMPD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    c_ = Chain{weights_.get(), weight_bytes / 16, 0, input_.get(), out_.get(), per_block, phases, sink_.get(), barrier_.get()};
    allow_dynamic_smem<chained_phase_kernel>(kOneBlockSmem);
    allow_dynamic_smem<persistent_chain_kernel>(kOneBlockSmem);
  }
  ~SyncChain() {
    if (graph_) cudaGraphExecDestroy(graph_);
    cudaStreamDestroy(stream_);
  }
  SyncChain(const SyncChain&) = delete;
  SyncChain& operator=(const SyncChain&) = delete;

  int blocks() const { return blocks_; }
  // Bytes each block streams a phase (a multiple of 16); the chained graph is captured anew.
  void set_bytes_per_block(long long bytes) {
    c_.words_per_block = bytes / 16;
    drop_graph();
  }
  void run(SyncWay way) {
    if (way == SyncWay::Persistent || way == SyncWay::PersistentNoBarrier || way == SyncWay::PersistentBarrierOnly)
      return launch_persistent(way != SyncWay::PersistentNoBarrier, way != SyncWay::PersistentBarrierOnly);
    if (graph_ && graph_way_ != way) drop_graph();
    if (!graph_) capture(way);
    PMPD_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
  }
  double seconds(SyncWay way, int reps) {
    return seconds_per_call(stream_, reps, [&] { run(way); });  // the first call captures the graph
  }
  std::vector<uint32_t> output() {
    PMPD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<uint32_t> v(size_t(c_.phases) * blocks_ * c_.per_block);
    PMPD_CUDA_CHECK(cudaMemcpy(v.data(), out_.get(), v.size() * 4, cudaMemcpyDeviceToHost));
    PMPD_CUDA_CHECK(cudaMemset(out_.get(), 0, v.size() * 4));
    return v;
  }

 private:
  void capture(SyncWay way) {
    const size_t smem = way == SyncWay::ChainedTwoAnSm ? kTwoBlockSmem : kOneBlockSmem;
    cudaGraph_t g;
    PMPD_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    for (int p = 0; p < c_.phases; ++p)
      launch_chained(chained_phase_kernel, dim3(unsigned(blocks_)), dim3(kThreads), smem, stream_, c_, p);
    PMPD_CUDA_CHECK(cudaStreamEndCapture(stream_, &g));
    PMPD_CUDA_CHECK(cudaGraphInstantiate(&graph_, g, 0));
    cudaGraphDestroy(g);
    graph_way_ = way;
  }
  void drop_graph() {
    if (graph_) cudaGraphExecDestroy(graph_), graph_ = nullptr;
  }
  void launch_persistent(bool barrier, bool read) {
    launch_cooperative(persistent_chain_kernel, dim3(unsigned(blocks_)), dim3(kThreads), kOneBlockSmem, stream_, c_,
                       barrier, read);
  }

  int blocks_;
  DevArray<uint4> weights_;
  DevArray<uint32_t> input_, out_, sink_;
  DevArray<unsigned> barrier_;
  cudaStream_t stream_ = nullptr;
  cudaGraphExec_t graph_ = nullptr;
  SyncWay graph_way_ = SyncWay::Chained;  // what graph_ runs
  Chain c_{};
};

}  // namespace

std::vector<SyncCost> measure_sync_costs(const std::vector<long long>& bytes_per_block, int phases) {
  // 512 MiB of weights: each phase's shares come from device memory, not L2.
  SyncChain chain(512LL << 20, 32, phases);
  std::vector<SyncCost> out;
  for (long long bytes : bytes_per_block) {
    chain.set_bytes_per_block(bytes / 16 * 16);
    for (SyncWay way : kSyncWays) {
      SyncCost r;
      r.way = way, r.bytes_per_block = bytes / 16 * 16, r.blocks = chain.blocks(), r.phases = phases;
      r.seconds_per_phase = chain.seconds(way, 20) / phases;
      out.push_back(r);
    }
  }
  return out;
}

int max_resident_clusters(int cluster_size) {
  // A block that takes a whole SM (512 threads, more than half the shared memory), as the
  // streaming GEMV's; the count is the device's GPC layout's answer (cluster blocks share a GPC).
  constexpr size_t kWholeSmSmem = 200 * 1024;
  allow_dynamic_smem<persistent_chain_kernel>(kWholeSmSmem);
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(unsigned(cluster_size) * 64u);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kWholeSmSmem;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = unsigned(cluster_size), attribute.val.clusterDim.y = 1, attribute.val.clusterDim.z = 1;
  config.attrs = &attribute, config.numAttrs = 1;
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, persistent_chain_kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();  // a size the device refuses: reported as -1, not fatal
    return -1;
  }
  return clusters;
}

SyncChainOutputs run_sync_chain(int phases, int per_block) {
  SyncChain chain(64LL << 20, per_block, phases);
  chain.set_bytes_per_block(4096);
  SyncChainOutputs r;
  r.blocks = chain.blocks();
  for (SyncWay way : kCheckedSyncWays) {
    chain.run(way);
    r.outputs.push_back(chain.output());
  }
  return r;
}

}  // namespace pmpd::cuda
