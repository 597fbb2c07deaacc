// Sampling the next token on the device: the host Sampler's definition (decode/sampler.h) run
// over one row of logits, so that a sampled decode step copies back a token, not the
// vocabulary's logits, and no host selection sits between two steps.
//
// The candidates' order is the host's: one 64-bit key a token, the logit's bits made monotone
// above the complemented token id. Every cut is a prefix of that order, found by a radix select
// over the keys (8-bit digits, most significant first; the token id's only where logits tie):
// the top k by counting, top-p and the draw by probability mass. Masses are integers (2^-31
// units, rounded to nearest) so that their sums do not depend on the order of the atomic adds:
// the same token every run. Against the host's double sums they move a boundary by ~1e-7 of
// the mass at a 32000-token vocabulary, so a draw landing that close to one may pick a
// neighbour (none in the tests' draws).
//
// The row is split over a cluster of blocks (Hopper; one block elsewhere), each holding its
// slice's logits and masses in shared memory where they fit: a select's pass over the row is
// then a few shared-memory loads a thread and one cluster barrier, where one block reading the
// row from global memory took ~10 us a pass (stop 30: 0.14 ms a draw at 32000 tokens). Every
// block takes the same decisions from the same cluster-wide sums, so no block waits on another
// to broadcast one.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxCluster = 16;                 // a non-portable cluster's size on Hopper
constexpr size_t kMaxSliceSmem = 200 * 1024;  // a slice's logits + masses in shared memory up to this
constexpr double kMassUnit = 2147483648.0;     // 2^31: probabilities in fixed point, a row's sum within 32 bits

__device__ __forceinline__ float logit_at(const float* x, int i) {
  const float v = x[i];
  return v == v ? v : -INFINITY;  // NaN: the least likely token, as on the host
}
__device__ __forceinline__ uint64_t order_key(float logit, int token) {
  const uint32_t b = logit == 0.f ? 0u : __float_as_uint(logit);  // -0 ties with +0
  const uint32_t monotone = b ^ (uint32_t(int32_t(b) >> 31) | 0x80000000u);
  return uint64_t(monotone) << 32 | (0xffffffffu - uint32_t(token));
}

// What the cluster's blocks read of one another: each exchange writes slot [e % 2] before a
// cluster barrier and reads every block's after it, so a slot is written again only after a
// barrier that follows every read of it (one barrier an exchange).
struct Exchanged {
  unsigned bins[2][256];  // a digit's weights: counts, or masses in 2^-31 units
  double sum[2];
  float best[2];
  int at[2];
  unsigned count[2];
  unsigned long long last[2];  // the largest key of weight under the chosen logit
};

// The blocks of the row: a cluster (one block: the block alone), each owning the slice
// [lo, lo + m) of the row in `x` (its logits, NaN as -inf) and `mass`.
struct Row {
  int rank, size, lo, m;
  float* x;
  unsigned* mass;
  int exchange = 0;  // exchanges so far: every block counts the same

  __device__ void sync() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (size > 1) return cg::this_cluster().sync();
#endif
    __syncthreads();
  }
  template <class T>
  __device__ const T* of(const T* p, int r) const {  // block r's copy of this block's shared p
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (size > 1) return cg::this_cluster().map_shared_rank(p, r);
#endif
    return p;
  }
  // Publishes this block's part (write(slot): thread 0 writes it), then every thread gets
  // combine(slot, rank) called for each block in rank order.
  template <class Write, class Combine>
  __device__ void all_reduce(Write&& write, Combine&& combine) {
    const int slot = exchange++ & 1;
    if (threadIdx.x == 0) write(slot);
    sync();
    for (int r = 0; r < size; ++r) combine(slot, r);
  }
};

struct Shared {
  Exchanged ex;
  unsigned total[256];  // the cluster's bins of the current digit
  double sums[kWarps];
  uint64_t prefix, remaining;
  int digit_found;
};

// The block's sum of v in a fixed order (the same bits every run).
__device__ double block_sum(double v, Shared& sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh.sums[warp] = v;
  __syncthreads();
  double s = 0;
  for (int w = 0; w < kWarps; ++w) s += sh.sums[w];
  __syncthreads();
  return s;
}
// The row's sum: the blocks' sums in rank order.
__device__ double row_sum(double v, Row& row, Shared& sh) {
  const double mine = block_sum(v, sh);
  double s = 0;
  row.all_reduce([&](int slot) { sh.ex.sum[slot] = mine; },
                 [&](int slot, int r) { s += row.of(sh.ex.sum, r)[slot]; });
  return s;
}

// Calls visit(i, key, weight) for every token of the block's slice (i: its index in the
// slice), four a thread at a time with their loads issued together, and with every lane of a
// warp in every call (past the slice: i = -1, weight 0), so visit may use warp-wide intrinsics.
template <class Weight, class Visit>
__device__ __forceinline__ void for_each_key(const Row& row, Weight&& weight, Visit&& visit) {
  constexpr int kBatch = 4;
  const int lane = threadIdx.x % 32;
  for (int w0 = threadIdx.x - lane; w0 < row.m; w0 += kBatch * kThreads) {  // the warp's first token
    float l[kBatch];
    unsigned w[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = w0 + lane + j * kThreads;
      l[j] = i < row.m ? logit_at(row.x, i) : -INFINITY;
      w[j] = i < row.m ? weight(i) : 0u;
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = w0 + lane + j * kThreads;
      visit(i < row.m ? i : -1, order_key(l[j], row.lo + i), w[j]);
    }
  }
}

// The key at which the running weight of the keys at or above `lower`, taken in decreasing
// order, first reaches target_of(their whole weight) (weight(i): the token's count or mass; 0
// leaves it out), or 0 when their whole weight falls short. (The first digit's bins hold that
// whole weight: a draw's target needs no pass of its own.) One pass a digit: the weights of the keys that share
// the digits chosen so far go into 256 bins, summed over the cluster, and warp 0 walks the
// bins down to the one the target falls in. Once the logit's 32 bits are chosen, one pass
// looks for a single key of weight left under them (no tie on the logit: the usual case) and
// skips the token id's.
template <class Target, class Weight>
__device__ uint64_t select_key(Row& row, uint64_t lower, Target&& target_of, Weight&& weight, Shared& sh) {
  uint64_t prefix = 0, remaining = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    const uint64_t chosen_mask = shift == 56 ? 0 : ~uint64_t(0) << (shift + 8);
    auto counts = [&](int i, uint64_t key, unsigned w) { return i >= 0 && w && key >= lower && (key & chosen_mask) == prefix; };
    if (shift == 24) {  // the logit is chosen: one key of weight under it ends the search
      const int slot = row.exchange & 1;
      if (threadIdx.x == 0) sh.ex.count[slot] = 0, sh.ex.last[slot] = 0;
      __syncthreads();
      unsigned count = 0;
      unsigned long long last = 0;
      for_each_key(row, weight, [&](int i, uint64_t key, unsigned w) {
        if (counts(i, key, w)) ++count, last = key > last ? key : last;
      });
      if (count) atomicAdd(&sh.ex.count[slot], count), atomicMax(&sh.ex.last[slot], last);
      unsigned all = 0;
      unsigned long long largest = 0;
      row.all_reduce([](int) {}, [&](int s, int r) {
        all += row.of(sh.ex.count, r)[s];
        const unsigned long long l = row.of(sh.ex.last, r)[s];
        largest = l > largest ? l : largest;
      });
      if (all == 1) return largest;
    }
    // The lanes of a warp that fall in one bin add their weights first, then one of them adds
    // the sum: an atomic a key on the few bins most keys share serialized the whole block.
    const int slot = row.exchange & 1;
    unsigned* bins = sh.ex.bins[slot];
    for (int b = threadIdx.x; b < 256; b += blockDim.x) bins[b] = 0;
    __syncthreads();
    for_each_key(row, weight, [&](int i, uint64_t key, unsigned w) {
      const unsigned bin = counts(i, key, w) ? unsigned(key >> shift) & 255u : 256u;
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      const unsigned sum = __reduce_add_sync(peers, bin < 256u ? w : 0u);
      if (bin < 256u && threadIdx.x % 32 == unsigned(__ffs(peers) - 1)) atomicAdd(&bins[bin], sum);
    });
    row.all_reduce([](int) {}, [](int, int) {});  // every block's bins are in
    for (int b = threadIdx.x; b < 256; b += blockDim.x) {
      unsigned t = 0;  // < 2^32: a row's masses sum to ~2^31, its counts to n
#pragma unroll
      for (int r = 0; r < kMaxCluster; ++r)
        if (r < row.size) t += row.of(sh.ex.bins[slot], r)[b];
      sh.total[b] = t;
    }
    __syncthreads();
    if (threadIdx.x < 32) {  // lane l: bins 255 - 8 l down to 248 - 8 l
      const int lane = threadIdx.x;
      unsigned long long chunk = 0;
      for (int j = 0; j < 8; ++j) chunk += sh.total[255 - 8 * lane - j];
      unsigned long long above = chunk;  // inclusive running sum over lanes 0..lane
      for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long v = __shfl_up_sync(0xffffffffu, above, o);
        if (lane >= o) above += v;
      }
      if (shift == 56) remaining = target_of(uint64_t(__shfl_sync(0xffffffffu, above, 31)));
      const unsigned reached = __ballot_sync(0xffffffffu, above >= remaining);
      if (lane == 0) sh.digit_found = reached != 0;
      if (reached && lane == __ffs(reached) - 1) {
        unsigned long long acc = above - chunk;
        for (int j = 0; j < 8; ++j) {
          const int d = 255 - 8 * lane - j;
          if (acc + sh.total[d] >= remaining) {
            sh.prefix = prefix | uint64_t(d) << shift;
            sh.remaining = remaining - acc;
            break;
          }
          acc += sh.total[d];
        }
      }
    }
    __syncthreads();
    if (!sh.digit_found) return 0;
    prefix = sh.prefix, remaining = sh.remaining;  // written again after the next barriers
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(float* x, int n, SampleParams p, const int* penalized,
                                                          unsigned long long* mass, bool in_shared, int* out,
                                                          int* next_token, StepState* step, int advance) {
  dev::chained_start();
  __shared__ Shared sh;
  extern __shared__ float slice[];
  Row row;
  row.rank = int(blockIdx.x), row.size = int(gridDim.x);  // the grid is one cluster
  const int per = (n + row.size - 1) / row.size;
  row.lo = min(n, row.rank * per), row.m = min(n, row.lo + per) - row.lo;
  if (in_shared) {
    for (int i = threadIdx.x; i < row.m; i += blockDim.x) slice[i] = logit_at(x, row.lo + i);
    row.x = slice, row.mass = reinterpret_cast<unsigned*>(slice + per);
  } else {
    row.x = x + row.lo, row.mass = reinterpret_cast<unsigned*>(mass) + row.lo;  // n words of the 2n
  }
  __syncthreads();
  if (p.repeat_penalty != 1.f)  // the distinct tokens of the window: one writer a token
    for (int j = threadIdx.x; j < p.n_penalized; j += blockDim.x) {
      const int t = penalized[j] - row.lo;
      if (t >= 0 && t < row.m) {
        const float v = row.x[t];
        row.x[t] = v > 0 ? v / p.repeat_penalty : v * p.repeat_penalty;
        if (in_shared) x[row.lo + t] = row.x[t];  // the row keeps the penalty, as on the host
      }
    }
  __syncthreads();

  dev::FirstMax first(n);
  for (int i = threadIdx.x; i < row.m; i += blockDim.x) first.take(logit_at(row.x, i), row.lo + i);
  first.take_block();
  dev::FirstMax largest(n);
  row.all_reduce([&](int slot) { sh.ex.best[slot] = first.best, sh.ex.at[slot] = first.at; },
                 [&](int slot, int r) { largest.take(row.of(sh.ex.best, r)[slot], row.of(sh.ex.at, r)[slot]); });
  const float best = largest.best;
  int token = largest.at < n ? largest.at : 0;

  if (p.temperature > 0 && best != -INFINITY) {
    // The top k: keys at or above the k-th largest.
    uint64_t lower = 0;
    if (p.top_k > 0 && p.top_k < n) {
      const uint64_t k = uint64_t(p.top_k);
      lower = select_key(row, 0, [k](uint64_t) { return k; }, [](int) { return 1u; }, sh);
    }
    // Softmax over them, then their masses (min-p's cut: a zero mass). The exponential is
    // taken twice (for the sum, then for the mass) rather than kept: a double a token would
    // halve the vocabulary a slice holds in shared memory.
    const double mx = best, temp = p.temperature;
    auto exp_of = [&](int i) {
      const float l = logit_at(row.x, i);
      return order_key(l, row.lo + i) >= lower ? exp((double(l) - mx) / temp) : 0.0;
    };
    double part = 0;
    for (int i = threadIdx.x; i < row.m; i += blockDim.x) part += exp_of(i);
    const double sum = row_sum(part, row, sh);
    const double floor = p.min_p > 0 ? double(p.min_p) * (1.0 / sum) : 0.0;  // the largest's probability is 1 / sum
    for (int i = threadIdx.x; i < row.m; i += blockDim.x) {
      const double prob = exp_of(i) / sum;
      // Rounded to nearest: a prefix's rounding errors cancel (~sqrt(n) units, not n).
      row.mass[i] = prob > 0 && prob >= floor ? unsigned(llrint(prob * kMassUnit)) : 0u;
    }
    __syncthreads();
    auto mass_of = [&](int i) { return row.mass[i]; };
    // top-p: the shortest run of the order whose mass reaches it.
    if (p.top_p < 1) {
      const uint64_t mass = uint64_t(double(p.top_p) * kMassUnit);
      const uint64_t last = select_key(row, lower, [mass](uint64_t) { return mass; }, mass_of, sh);
      if (last) lower = last;  // a crossing at or below every kept key; 0: the mass fell short, keep all
    }
    // The draw: u of the kept run's mass, the first key where the running mass reaches it.
    const double u = p.u;
    auto draw_target = [u](uint64_t kept) {
      const uint64_t t = uint64_t(ceil(u * double(kept)));  // kept: exact in a double (< 2^53 units)
      return t ? t : 1;  // u = 0: the first candidate with mass (the run's first)
    };
    const uint64_t key = select_key(row, lower, draw_target, mass_of, sh);
    if (key) token = int(0xffffffffu - uint32_t(key));
  }
  if (row.rank == 0 && threadIdx.x == 0) {
    *out = token;
    if (next_token) *next_token = token, step->pos0 += advance;
  }
  row.sync();  // no block leaves while another may still read its shared memory
}

// Whether a cluster of `blocks` blocks, each with the most shared memory a slice takes, can be
// resident at once (a small MIG slice may not hold 8 SMs of one GPC).
bool cluster_fits(int blocks) {
  allow_dynamic_smem<sample_kernel>(kMaxSliceSmem);
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks), config.blockDim = dim3(kThreads), config.dynamicSmemBytes = kMaxSliceSmem;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = blocks, cluster.val.clusterDim.y = 1, cluster.val.clusterDim.z = 1;
  config.attrs = &cluster, config.numAttrs = 1;
  int clusters = 0;
  return cudaOccupancyMaxActiveClusters(&clusters, sample_kernel, &config) == cudaSuccess && clusters > 0;
}

// Blocks a row is split over: PMPD_CUDA_SAMPLE_CLUSTER (1, 2, 4, 8 or 16), else 8, where the
// device launches clusters of that size and the kernel was built for Hopper or later; fewer
// where not (down to one block).
int cluster_size() {
  static const int size = [] {
    int device = 0, cluster_launch = 0;
    PMPD_CUDA_CHECK(cudaGetDevice(&device));
    PMPD_CUDA_CHECK(cudaDeviceGetAttribute(&cluster_launch, cudaDevAttrClusterLaunch, device));
    cudaFuncAttributes f{};
    PMPD_CUDA_CHECK(cudaFuncGetAttributes(&f, sample_kernel));
    const int most = cluster_launch != 0 && f.ptxVersion >= 90 ? kMaxCluster : 1;
    int want = 8;
    if (const char* e = std::getenv("PMPD_CUDA_SAMPLE_CLUSTER")) want = std::atoi(e);
    int s = 1;
    while (s * 2 <= want && s * 2 <= most) s *= 2;
    if (s > 8) PMPD_CUDA_CHECK(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    while (s > 1 && !cluster_fits(s)) s /= 2;
    (void)cudaGetLastError();  // a refused occupancy query leaves no error behind
    return s;
  }();
  return size;
}

}  // namespace

void sample_token(float* x, int n, const SampleParams& p, const int* penalized, unsigned long long* mass, int* out,
                  void* stream, const NextStep& next) {
  const int blocks = cluster_size();
  const int per = (n + blocks - 1) / blocks;
  const size_t smem = size_t(per) * (sizeof(float) + sizeof(unsigned));
  const bool in_shared = smem <= kMaxSliceSmem;
  if (in_shared) allow_dynamic_smem<sample_kernel>(smem);
  launch_chained_clusters(sample_kernel, dim3(blocks), dim3(kThreads), dim3(blocks), in_shared ? smem : 0,
                          static_cast<cudaStream_t>(stream), x, n, p, penalized, mass, in_shared, out, next.token,
                          next.step, next.advance);
}

}  // namespace pmpd::cuda
