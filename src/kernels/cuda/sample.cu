// Sampling the next token on the device: the host Sampler's definition (decode/sampler.h) run
// by one block over one row of logits, so that a sampled decode step copies back a token, not
// the vocabulary's logits, and no host selection sits between two steps.
//
// The candidates' order is the host's: one 64-bit key a token, the logit's bits made monotone
// above the complemented token id. Every cut is a prefix of that order, found by a radix select
// over the keys (8-bit digits, most significant first; the token id's only where logits tie):
// the top k by counting, top-p and the draw by probability mass. Masses are integers (2^-31
// units, rounded to nearest) so that their sums do not depend on the order of the atomic adds:
// the same token every run. Against the host's double sums they move a boundary by ~1e-7 of
// the mass at a 32000-token vocabulary, so a draw landing that close to one may pick a
// neighbour (none in the tests' draws).
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"

namespace pmpd::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr double kMassUnit = 2147483648.0;  // 2^31: probabilities in fixed point, a row's sum within 32 bits

__device__ __forceinline__ float logit_at(const float* x, int i) {
  const float v = x[i];
  return v == v ? v : -INFINITY;  // NaN: the least likely token, as on the host
}
__device__ __forceinline__ uint64_t order_key(float logit, int token) {
  const uint32_t b = logit == 0.f ? 0u : __float_as_uint(logit);  // -0 ties with +0
  const uint32_t monotone = b ^ (uint32_t(int32_t(b) >> 31) | 0x80000000u);
  return uint64_t(monotone) << 32 | (0xffffffffu - uint32_t(token));
}

struct Shared {
  unsigned bins[256];  // weights: counts, or masses in 2^-31 units (a row's sum fits 32 bits)
  double sums[kWarps];
  float best[kWarps];
  int at[kWarps];
  uint64_t prefix, remaining;
  unsigned long long last;  // the largest key of weight under the chosen logit
  unsigned count;           // and how many there are
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

// Calls visit(i, key, weight) for every token, four a thread at a time with their loads
// issued together, and with every lane of a warp in every call (past the row: i = -1, weight
// 0), so visit may use warp-wide intrinsics.
template <class Weight, class Visit>
__device__ __forceinline__ void for_each_key(const float* x, int n, Weight&& weight, Visit&& visit) {
  constexpr int kBatch = 4;
  const int lane = threadIdx.x % 32;
  for (int w0 = threadIdx.x - lane; w0 < n; w0 += kBatch * kThreads) {  // the warp's first token
    float l[kBatch];
    unsigned w[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = w0 + lane + j * kThreads;
      l[j] = i < n ? logit_at(x, i) : -INFINITY;
      w[j] = i < n ? weight(i) : 0u;
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = w0 + lane + j * kThreads;
      visit(i < n ? i : -1, order_key(l[j], i), w[j]);
    }
  }
}

// The key at which the running weight of the keys at or above `lower`, taken in decreasing
// order, first reaches `target` (weight(i): the token's count or mass; 0 leaves it out), or 0
// when their whole weight falls short. One pass a digit: the weights of the keys that share
// the digits chosen so far go into 256 bins, and warp 0 walks the bins down to the one the
// target falls in. Once the logit's 32 bits are chosen, one pass looks for a single key of
// weight left under them (no tie on the logit: the usual case) and skips the token id's.
template <class Weight>
__device__ uint64_t select_key(const float* x, int n, uint64_t lower, uint64_t target, Weight&& weight, Shared& sh) {
  if (threadIdx.x == 0) sh.prefix = 0, sh.remaining = target, sh.digit_found = 1;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) sh.bins[b] = 0;
    if (threadIdx.x == 0) sh.count = 0, sh.last = 0;
    __syncthreads();
    const uint64_t chosen_mask = shift == 56 ? 0 : ~uint64_t(0) << (shift + 8), prefix = sh.prefix;
    auto counts = [&](int i, uint64_t key, unsigned w) { return i >= 0 && w && key >= lower && (key & chosen_mask) == prefix; };
    if (shift == 24) {  // the logit is chosen: one key of weight under it ends the search
      unsigned count = 0;
      unsigned long long last = 0;
      for_each_key(x, n, weight, [&](int i, uint64_t key, unsigned w) {
        if (counts(i, key, w)) ++count, last = key > last ? key : last;
      });
      if (count) atomicAdd(&sh.count, count), atomicMax(&sh.last, last);
      __syncthreads();
      if (sh.count == 1) return sh.last;  // every thread reads it before any writes it again
    }
    // The lanes of a warp that fall in one bin add their weights first, then one of them adds
    // the sum: an atomic a key on the few bins most keys share serialized the whole block.
    for_each_key(x, n, weight, [&](int i, uint64_t key, unsigned w) {
      const unsigned bin = counts(i, key, w) ? unsigned(key >> shift) & 255u : 256u;
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      const unsigned sum = __reduce_add_sync(peers, bin < 256u ? w : 0u);
      if (bin < 256u && threadIdx.x % 32 == unsigned(__ffs(peers) - 1)) atomicAdd(&sh.bins[bin], sum);
    });
    __syncthreads();
    if (threadIdx.x < 32) {  // lane l: bins 255 - 8 l down to 248 - 8 l
      const int lane = threadIdx.x;
      unsigned long long chunk = 0;
      for (int j = 0; j < 8; ++j) chunk += sh.bins[255 - 8 * lane - j];
      unsigned long long above = chunk;  // inclusive running sum over lanes 0..lane
      for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long v = __shfl_up_sync(0xffffffffu, above, o);
        if (lane >= o) above += v;
      }
      const uint64_t remaining = sh.remaining;
      const unsigned reached = __ballot_sync(0xffffffffu, above >= remaining);
      if (lane == 0 && !reached) sh.digit_found = 0;
      if (reached && lane == __ffs(reached) - 1) {
        unsigned long long acc = above - chunk;
        for (int j = 0; j < 8; ++j) {
          const int d = 255 - 8 * lane - j;
          if (acc + sh.bins[d] >= remaining) {
            sh.prefix = prefix | uint64_t(d) << shift;
            sh.remaining = remaining - acc;
            break;
          }
          acc += sh.bins[d];
        }
      }
    }
    __syncthreads();
    if (!sh.digit_found) return 0;
  }
  return sh.prefix;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(float* x, int n, SampleParams p, const int* penalized,
                                                          unsigned long long* mass, int* out, int* next_token,
                                                          StepState* step, int advance) {
  dev::chained_start();
  __shared__ Shared sh;
  if (p.repeat_penalty != 1.f)
    for (int j = threadIdx.x; j < p.n_penalized; j += blockDim.x) {
      const int t = penalized[j];
      if (t >= 0 && t < n) x[t] = x[t] > 0 ? x[t] / p.repeat_penalty : x[t] * p.repeat_penalty;
    }
  __syncthreads();

  // The first largest logit (as argmax_kernel).
  float best = -INFINITY;
  int at = n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = logit_at(x, i);
    if (v > best || (v == best && i < at)) best = v, at = i;
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float b = __shfl_xor_sync(0xffffffffu, best, o);
    const int a = __shfl_xor_sync(0xffffffffu, at, o);
    if (b > best || (b == best && a < at)) best = b, at = a;
  }
  if (threadIdx.x % 32 == 0) sh.best[threadIdx.x / 32] = best, sh.at[threadIdx.x / 32] = at;
  __syncthreads();
  best = sh.best[0], at = sh.at[0];
  for (int w = 1; w < kWarps; ++w)
    if (sh.best[w] > best || (sh.best[w] == best && sh.at[w] < at)) best = sh.best[w], at = sh.at[w];
  int token = at < n ? at : 0;

  if (p.temperature > 0 && best != -INFINITY) {
    // The top k: keys at or above the k-th largest.
    uint64_t lower = 0;
    if (p.top_k > 0 && p.top_k < n)
      lower = select_key(x, n, 0, uint64_t(p.top_k), [](int) { return 1u; }, sh);
    // Softmax over them, then their masses (min-p's cut: a zero mass).
    const double mx = best, temp = p.temperature;
    // (One exponential a token: mass[] holds e^((l - max) / T) until the sum is known. One
    // block does it all, and a double exponential is tens of FP64 instructions.)
    double part = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const float l = logit_at(x, i);
      const double e = order_key(l, i) >= lower ? exp((double(l) - mx) / temp) : 0.0;
      mass[i] = __double_as_longlong(e);
      part += e;
    }
    const double sum = block_sum(part, sh);
    const double floor = p.min_p > 0 ? double(p.min_p) * (1.0 / sum) : 0.0;  // the largest's probability is 1 / sum
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const double prob = __longlong_as_double((long long)mass[i]) / sum;
      // Rounded to nearest: a prefix's rounding errors cancel (~sqrt(n) units, not n).
      mass[i] = prob > 0 && prob >= floor ? (unsigned long long)llrint(prob * kMassUnit) : 0ull;
    }
    __syncthreads();
    auto mass_of = [&](int i) { return unsigned(mass[i]); };
    // top-p: the shortest run of the order whose mass reaches it.
    if (p.top_p < 1) {
      const uint64_t last = select_key(x, n, lower, uint64_t(double(p.top_p) * kMassUnit), mass_of, sh);
      if (last) lower = last;  // a crossing at or below every kept key; 0: the mass fell short, keep all
    }
    // The draw: u of the kept run's mass, the first key where the running mass reaches it.
    unsigned long long kept = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
      if (order_key(logit_at(x, i), i) >= lower) kept += mass[i];
    const double total = block_sum(double(kept), sh);  // exact: fewer than 2^53 units
    uint64_t target = uint64_t(ceil(p.u * total));
    if (target == 0) target = 1;  // u = 0: the first candidate with mass (the run's first)
    const uint64_t key = select_key(x, n, lower, target, mass_of, sh);
    if (key) token = int(0xffffffffu - uint32_t(key));
  }
  if (threadIdx.x == 0) {
    *out = token;
    if (next_token) *next_token = token, step->pos0 += advance;
  }
}

}  // namespace

void sample_token(float* x, int n, const SampleParams& p, const int* penalized, unsigned long long* mass, int* out,
                  void* stream, const NextStep& next) {
  launch_chained(sample_kernel, dim3(1), dim3(kThreads), 0, static_cast<cudaStream_t>(stream), x, n, p, penalized,
                 mass, out, next.token, next.step, next.advance);
}

}  // namespace pmpd::cuda
