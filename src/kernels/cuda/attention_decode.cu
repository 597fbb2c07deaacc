// The decode step's attention on the device (one token a pass): RoPE, the f16 KV-cache
// store and a softmax split along the context, in one kernel (flash-decoding). Its CPU
// twin is the attention of kernels/cpu/ops.cpp; tests/test_cuda.cpp checks it against a
// plain CPU computation.
#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/fragment_order.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/timeline.cuh"

namespace pmpd::cuda {

PMPD_TIMELINE_UNIT(attention_decode)

namespace {

using dev::block_max;
using dev::block_sum;

// Threads a block (attention_decode_threads): 128 at long contexts (256 there measured 4-9%
// slower end to end with 8 splits a head, stop 20), 256 at short ones; PMPD_CUDA_ATTN_THREADS
// (128, 256 or 512) overrides. A block's teams merge through shared memory, so fewer, wider
// blocks a head trade part of the splits' merge for a block's.
constexpr int kDecodeThreads = 128;
constexpr int kMaxDecodeThreads = 512;
constexpr int kMaxSplits = 16;  // the merge unrolls its loads over this many
constexpr int kMaxClusterSplits = 8;  // a portable cluster's size
constexpr int kLongContext = 1792;    // from here on, more splits (attention_decode_splits)
constexpr int kTeamSums = 16;         // teams whose sums a block adds up one by one (below: a block reduction)

// 8 halves (one 16-byte load) as floats.
__device__ __forceinline__ void unpack8(uint4 w, float (&f)[8]) {
  const __half2* h2 = reinterpret_cast<const __half2*>(&w);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 v = __half22float2(h2[j]);
    f[2 * j] = v.x, f[2 * j + 1] = v.y;
  }
}

// q . k for a cached key row (f16), a half at a time (heads not a multiple of 8).
__device__ __forceinline__ float dot_cached(const float* qh, const __half* k, int head_dim) {
  float s = 0.f;
  for (int d = 0; d < head_dim; ++d) s += __half2float(k[d]) * qh[d];
  return s;
}

// Entry d of head h's output; also into the output projection's input fragments where asked.
__device__ __forceinline__ void write_output(const DecodeAttentionArgs& a, int h, int d, float o) {
  const int64_t c = int64_t(h) * a.head_dim + d;
  a.out[c] = o;
  if (a.fragments) a.fragments[x_slot(c)] = __half_as_ushort(__float2half_rn(o));
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// The merge of a head's splits when they form one thread-block cluster (Hopper), with one
// barrier: each block pushes its unnormalised row (the sum of its `rows` rows of part), max
// and sum into the shared memory of the block that merges them (block s merges dimensions
// s * share ..), and after the barrier every block merges from its own shared memory. Against
// the merge through global memory (a fence, a counter and two round trips for the last block:
// ~4 us a layer of a 3-bit Vicuna-7B step) this is one barrier and remote stores inside a GPC;
// against stop 19's cluster merge (pull: a barrier, remote loads, a barrier before any block
// may leave) +0.5..1.5% end to end on Vicuna-7B at 2..3 bits
// (sweeps/stop28-pingpong-push-merge.md). The cluster's blocks were all seen started (the
// barrier phase begun at the kernel's start, waited for in here) before any remote store.
__device__ void merge_in_cluster(const DecodeAttentionArgs& a, const float* part, int rows, float m, float l, int h,
                                 int s) {
  namespace cg = cooperative_groups;
  constexpr int kMaxShare = kMaxHeadDim / 2;  // splits >= 2 here
  __shared__ float inbox[kMaxClusterSplits * (kMaxShare + 2)];
  const int hd = a.head_dim, tid = threadIdx.x, share = (hd + a.splits - 1) / a.splits, pitch = share + 2;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.barrier_wait();  // every block of the cluster has started
  for (int d = tid; d < hd; d += blockDim.x) {
    float o = 0.f;
    for (int g = 0; g < rows; ++g) o += part[g * hd + d];
    const int owner = d / share;
    cluster.map_shared_rank(inbox, owner)[s * pitch + (d - owner * share)] = o;
  }
  if (tid < a.splits) {
    float* box = cluster.map_shared_rank(inbox, tid) + s * pitch + share;
    box[0] = m, box[1] = l;
  }
  PMPD_TIMELINE_MARK(4);
  cluster.sync();  // every split's values are in their merging block (release / acquire)
  PMPD_TIMELINE_MARK(5);
  if (tid - tid % 32 >= share) return;  // warps without a dimension to merge
  // The splits' weights once a warp, lane j computing split j's, where every merging thread
  // computed all of them (stop 34: 8 exponentials and 4 divisions a thread became one of each);
  // the same operations in the same order as the merge through global memory.
  const int lane = tid % 32;
  const bool in_split = lane < a.splits;
  const float my_m = in_split ? inbox[lane * pitch + share] : 0.f, my_l = in_split ? inbox[lane * pitch + share + 1] : 0.f;
  const bool counts = in_split && my_l > 0.f;  // a split with positions
  float M = counts ? my_m : -INFINITY;
  for (int o = kMaxClusterSplits / 2; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  M = __shfl_sync(0xffffffffu, M, 0);  // lanes 0..7 reduced among themselves
  const float e = counts ? expf(my_m - M) : 0.f;
  float L = 0.f;
#pragma unroll
  for (int j = 0; j < kMaxClusterSplits; ++j) {
    const float lj = __shfl_sync(0xffffffffu, my_l, j), ej = __shfl_sync(0xffffffffu, e, j);
    L += j < a.splits && lj > 0.f ? lj * ej : 0.f;
  }
  const unsigned counted = __ballot_sync(0xffffffffu, counts);
  float wj[kMaxClusterSplits];
  const float w = counts ? e / L : 0.f;
#pragma unroll
  for (int j = 0; j < kMaxClusterSplits; ++j) wj[j] = __shfl_sync(0xffffffffu, w, j);
  for (int d = s * share + tid; d < min(hd, (s + 1) * share); d += blockDim.x) {
    float o = 0.f;
#pragma unroll
    for (int j = 0; j < kMaxClusterSplits; ++j)
      o += (counted >> j) & 1u ? inbox[j * pitch + (d - s * share)] * wj[j] : 0.f;  // split j's row share
    write_output(a, h, d, o);
  }
  PMPD_TIMELINE_MARK(6);
}
#endif

// The decode step's attention of one layer, RoPE and the KV store included, split along
// the context (flash-decoding): block (h, s) rotates head h's query (and, where its range
// holds the new position, the new key), scores positions [p0, p1) of the cache, and leaves
// (max, sum of exponentials, unnormalised output) in `partial`; the last block of a head
// to finish merges the splits. The new key and value enter rounded to f16, as stored.
__global__ void __launch_bounds__(kMaxDecodeThreads) attention_decode_kernel(DecodeAttentionArgs a) {
  extern __shared__ float smem[];
  const int hd = a.head_dim, G = max(1, int(blockDim.x) / hd);  // value groups
  float* qh = smem;
  float* kn = qh + hd;
  float* vn = kn + hd;
  float2* rot = reinterpret_cast<float2*>(vn + hd);     // (cos, sin) of each rotated pair
  float* part = vn + 2 * hd;                            // partial outputs, 8 floats a thread
  float* scores = part + max(8 * int(blockDim.x), hd);  // the split's positions
  __shared__ bool is_last;
  __shared__ float split_weight[kMaxSplits], split_sum[kMaxSplits];  // the merge's per-split values
  __shared__ float team_l[kTeamSums];  // each team's sum of exponentials, rescaled to the block's max
  const int h = blockIdx.x, s = blockIdx.y, tid = threadIdx.x;
  const int group = a.n_heads / a.n_kv_heads, kvh = h / group, kv_dim = a.n_kv_heads * hd;
  PMPD_TIMELINE_BEGIN(timeline::DecodeAttention, 16, reinterpret_cast<uintptr_t>(a.kv_slots));
  dev::let_next_start();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (a.cluster_merge) cooperative_groups::this_cluster().barrier_arrive();  // see merge_in_cluster
#endif
  // The step state (copied before the step), the rotation of this position and the cache
  // rows before it (written by earlier steps) need nothing from the kernel before this one:
  // all of it is fetched or computed before waiting on it, so that after the wait only the
  // token's own q, k, v are a memory round trip away.
  const int pos = a.step->pos0, len = pos + 1;
  const int chunk = (len + a.splits - 1) / a.splits, p0 = s * chunk, p1 = min(len, p0 + chunk);
  const bool has_new = p0 <= pos && pos < p1;
  const __half* k_cache = reinterpret_cast<const __half*>(a.kv_slots[0]);
  const __half* v_cache = reinterpret_cast<const __half*>(a.kv_slots[1]);
  // Heads of a multiple of 8 go by teams of T threads a position, one 16-byte load of 8
  // halves each (coalesced rows, `teams` positions at once); others a thread a position.
  const bool vec = hd % 8 == 0;
  int T = 1;
  while (vec && T < hd / 8) T <<= 1;
  const int teams = int(blockDim.x) / T, team = tid / T, d0 = 8 * (tid % T);
  const bool active = vec && d0 < hd;
  const bool team_sums = vec && teams <= kTeamSums;  // the block's sum from the teams' (below)
  // Online softmax per team over batches of U positions a team: a batch's keys and values
  // are loaded while the batch before is scored (two register buffers), so a team keeps up
  // to 4U row loads in flight instead of waiting on each batch.
  constexpr int U = 4;
  uint4 kr0[U], vr0[U], kr1[U], vr1[U];
  auto load_batch = [&](uint4 (&kr)[U], uint4 (&vr)[U], int pb) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int p = pb + u * teams + team;
      kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      if (active && p < p1 && p != pos) {
        const int64_t off = int64_t(p) * kv_dim + kvh * hd + d0;
        kr[u] = *reinterpret_cast<const uint4*>(k_cache + off);
        vr[u] = *reinterpret_cast<const uint4*>(v_cache + off);
      }
    }
  };
  const int batch = teams * U;
  if (vec) {
    load_batch(kr0, vr0, p0);
    if (p0 + batch < p1) load_batch(kr1, vr1, p0 + batch);
  }
  const int half = a.rotary_dim / 2;
  for (int i = tid; i < half; i += blockDim.x) {
    float sn, cs;
    sincosf(float(pos) * a.inv_freq[i], &sn, &cs);
    rot[i] = make_float2(cs, sn);
  }
  dev::wait_for_producer();  // q, k, v of this token come from the projection before
  PMPD_TIMELINE_MARK(1);
  const bool stores_kv = has_new && h % group == 0;  // one head of the group stores its kv head
  __half* k_store = reinterpret_cast<__half*>(a.kv_slots[0]) + int64_t(pos) * kv_dim + kvh * hd;
  __half* v_store = reinterpret_cast<__half*>(a.kv_slots[1]) + int64_t(pos) * kv_dim + kvh * hd;
  for (int d = tid; d < hd; d += blockDim.x) {
    qh[d] = a.qkv[h * hd + d];
    if (has_new) {
      // The new value enters rounded to f16, as stored; the key is rounded after its rotation.
      kn[d] = a.qkv[a.k_off + kvh * hd + d];
      const __half v16 = __float2half_rn(a.qkv[a.v_off + kvh * hd + d]);
      vn[d] = __half2float(v16);
      if (stores_kv) v_store[d] = v16;
    }
  }
  __syncthreads();
  PMPD_TIMELINE_MARK(7);  // the token's q, k, v in shared memory
  if (vec) PMPD_TIMELINE_MARK_ARRIVED(10, kr0[0].x);  // thread 0's first cache row (loaded before the wait) is in
  // Rotation: pair i of q, and (threads past the pairs of q) pair i of the new key, whose
  // rotated entries are rounded and stored; entries past rotary_dim are stored as they are.
  const int key_jobs = has_new ? hd - half : 0;  // pairs, then the unrotated tail
  for (int i = tid; i < half + key_jobs; i += blockDim.x) {
    const bool key = i >= half;
    const int j = key ? i - half : i;
    float* v = key ? kn : qh;
    if (j < half) {
      const int x0i = a.interleaved ? 2 * j : j, x1i = a.interleaved ? 2 * j + 1 : j + half;
      const float2 r = rot[j];
      const float x0 = v[x0i], x1 = v[x1i];
      float y0 = x0 * r.x - x1 * r.y, y1 = x1 * r.x + x0 * r.y;
      if (key) {
        const __half k0 = __float2half_rn(y0), k1 = __float2half_rn(y1);
        y0 = __half2float(k0), y1 = __half2float(k1);
        if (stores_kv) k_store[x0i] = k0, k_store[x1i] = k1;
      }
      v[x0i] = y0, v[x1i] = y1;
    } else {  // a key entry past the rotated dimensions
      const int d = a.rotary_dim + (j - half);
      const __half k16 = __float2half_rn(kn[d]);
      kn[d] = __half2float(k16);
      if (stores_kv) k_store[d] = k16;
    }
  }
  __syncthreads();
  PMPD_TIMELINE_MARK(8);  // rotated
  const float scale = rsqrtf(float(hd));
  float m = -INFINITY, l = 0.f;  // the block's softmax max and sum
  int rows = G;                  // the output is the sum of rows part[0 .. rows)
  if (vec) {
    float qr[8], acc[8] = {}, tm = -INFINITY, tl = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) qr[j] = active ? qh[d0 + j] : 0.f;
    // A batch's U scores are independent: all U dot products and their shuffles first, then
    // one rescale of the running sum and output for the batch's maximum (not one a position:
    // a chain of dependent exponentials and multiply-adds that latency, not memory, bounded).
    auto score_batch = [&](const uint4 (&kr)[U], const uint4 (&vr)[U], int pb) {
      float sc[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int p = pb + u * teams + team;
        float k[8];
        unpack8(kr[u], k);
        if (active && p == pos)
#pragma unroll
          for (int j = 0; j < 8; ++j) k[j] = kn[d0 + j];
        sc[u] = 0.f;
#pragma unroll
        for (int j = 0; j < 8; ++j) sc[u] += k[j] * qr[j];
      }
      for (int o = T / 2; o > 0; o >>= 1)
#pragma unroll
        for (int u = 0; u < U; ++u) sc[u] += __shfl_xor_sync(0xffffffffu, sc[u], o);
      float mb = tm;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        sc[u] = pb + u * teams + team < p1 ? sc[u] * scale : -INFINITY;
        mb = fmaxf(mb, sc[u]);
      }
      if (mb == -INFINITY) return;  // no position of this team in the batch
      const float corr = expf(tm - mb);
      tl *= corr;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[j] *= corr;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int p = pb + u * teams + team;
        if (p >= p1) continue;
        float v[8];
        unpack8(vr[u], v);
        if (active && p == pos)
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = vn[d0 + j];
        const float e = expf(sc[u] - mb);
        tl += e;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] += e * v[j];
      }
      tm = mb;
    };
    // Batches pb (buffer 0) and pb + batch (buffer 1), each buffer refilled two batches on as
    // soon as it is scored. The same trips for every thread: the shuffles need all of them.
    for (int pb = p0; pb < p1; pb += 2 * batch) {
      score_batch(kr0, vr0, pb);
      if (pb + 2 * batch < p1) load_batch(kr0, vr0, pb + 2 * batch);
      if (pb + batch < p1) {
        score_batch(kr1, vr1, pb + batch);
        if (pb + 3 * batch < p1) load_batch(kr1, vr1, pb + 3 * batch);
      }
    }
    PMPD_TIMELINE_MARK(9);  // thread 0's team has scored its positions
    // The teams onto the block's max (every lane of a team holds its team's tm and tl).
    m = block_max(tm);
    const float w = tl > 0.f ? expf(tm - m) : 0.f;
    // The block's sum of exponentials: up to 16 teams, their sums added up after the barrier
    // below, one block reduction fewer (stop 34, with the cluster merge's weights once a warp:
    // +0.2..0.6% end to end); more teams a block reduction (Phi-1.5's heads of 64, 64 teams in
    // one 512-thread block, ran 1.5% slower with every thread adding 64 sums).
    if (team_sums) {
      if (tid % T == 0) team_l[team] = tl * w;
    } else {
      l = block_sum(tid % T == 0 ? tl * w : 0.f);
    }
    rows = teams;
    if (active)
#pragma unroll
      for (int j = 0; j < 8; ++j) part[team * hd + d0 + j] = acc[j] * w;
  } else {
    for (int p = p0 + tid; p < p1; p += blockDim.x) {
      float sc = 0.f;
      if (p == pos)
        for (int d = 0; d < hd; ++d) sc += kn[d] * qh[d];
      else
        sc = dot_cached(qh, k_cache + int64_t(p) * kv_dim + kvh * hd, hd);
      sc *= scale;
      scores[p - p0] = sc;
      m = fmaxf(m, sc);
    }
    m = block_max(m);
    for (int p = p0 + tid; p < p1; p += blockDim.x) {
      const float e = expf(scores[p - p0] - m);
      scores[p - p0] = e;
      l += e;
    }
    l = block_sum(l);  // its barrier also publishes the exponentials
    for (int i = tid; i < G * hd; i += blockDim.x) {
      const int g = i / hd, d = i % hd;
      float o = 0.f;
#pragma unroll 4
      for (int p = p0 + g; p < p1; p += G)
        o += scores[p - p0] * (p == pos ? vn[d] : __half2float(v_cache[int64_t(p) * kv_dim + kvh * hd + d]));
      part[i] = o;
    }
  }
  __syncthreads();
  if (team_sums) {  // the block's sum, the teams' in order (every thread the same)
    l = 0.f;
    for (int g = 0; g < rows; ++g) l += team_l[g];
  }
  PMPD_TIMELINE_MARK(2);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (a.cluster_merge) {
    merge_in_cluster(a, part, rows, m, l, h, s);
    PMPD_TIMELINE_MARK(3);
    return;
  }
#endif
  // The block's output row: the final one where the head is not split, else this split's
  // unnormalised row beside its max and sum.
  float* mine = a.splits > 1 ? a.partial + (int64_t(h) * a.splits + s) * (hd + 2) : nullptr;
  for (int d = tid; d < hd; d += blockDim.x) {
    float o = 0.f;
    for (int g = 0; g < rows; ++g) o += part[g * hd + d];
    if (a.splits == 1) write_output(a, h, d, o / l);
    else mine[d] = o;
  }
  if (a.splits == 1) return;
  if (tid == 0) mine[hd] = m, mine[hd + 1] = l;
  __threadfence();  // this split's result is visible before it is counted
  __syncthreads();
  if (tid == 0) is_last = atomicAdd(&a.counters[h], 1u) == unsigned(a.splits - 1);
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  // The merge, in two memory round trips: every split's max and sum, then every split's
  // row at once (the loads are unrolled over the largest split count).
  const float* all = a.partial + int64_t(h) * a.splits * (hd + 2);
  if (tid < a.splits) {
    split_weight[tid] = __ldcg(all + tid * (hd + 2) + hd);  // max, for now
    split_sum[tid] = __ldcg(all + tid * (hd + 2) + hd + 1);
  }
  __syncthreads();
  float M = -INFINITY, L = 0.f;
  for (int j = 0; j < a.splits; ++j)
    if (split_sum[j] > 0.f) M = fmaxf(M, split_weight[j]);
  for (int j = 0; j < a.splits; ++j) L += split_sum[j] > 0.f ? split_sum[j] * expf(split_weight[j] - M) : 0.f;
  __syncthreads();  // every thread has read the maxima before they become weights
  if (tid < a.splits) split_weight[tid] = split_sum[tid] > 0.f ? expf(split_weight[tid] - M) / L : 0.f;
  __syncthreads();
  for (int d = tid; d < hd; d += blockDim.x) {
    float row[kMaxSplits];
#pragma unroll
    for (int j = 0; j < kMaxSplits; ++j) row[j] = j < a.splits ? __ldcg(all + j * (hd + 2) + d) : 0.f;
    float o = 0.f;
#pragma unroll
    for (int j = 0; j < kMaxSplits; ++j) o += j < a.splits ? row[j] * split_weight[j] : 0.f;
    write_output(a, h, d, o);
  }
  if (tid == 0) a.counters[h] = 0;  // ready for the next step (graphs replay this kernel)
}

// Whether a head's splits can merge in a cluster: a device with cluster launches, a kernel
// built for Hopper or later, and PMPD_CUDA_ATTN_CLUSTER not 0.
bool clusters_available() {
  static const bool available = [] {
    if (const char* e = std::getenv("PMPD_CUDA_ATTN_CLUSTER"); e && std::string(e) == "0") return false;
    int device = 0, cluster_launch = 0;
    PMPD_CUDA_CHECK(cudaGetDevice(&device));
    PMPD_CUDA_CHECK(cudaDeviceGetAttribute(&cluster_launch, cudaDevAttrClusterLaunch, device));
    cudaFuncAttributes f{};
    PMPD_CUDA_CHECK(cudaFuncGetAttributes(&f, attention_decode_kernel));
    return cluster_launch != 0 && f.ptxVersion >= 90;
  }();
  return available;
}

// Splits a head at short contexts: about one block an SM of kShortThreads threads (Vicuna-7B,
// 32 heads: 4 splits of 256 threads, where 8 of 128 ran before: the same 1024 threads a
// head, 64 teams of 16, more of its rows merged in a block's shared memory and fewer through
// the cluster; sweeps/stop25-attention-blocks.md).
constexpr int kShortThreads = 256;
int short_splits(int n_heads, int max_ctx) {
  return std::clamp(std::min(multiprocessor_count() / n_heads, max_ctx / 32), 1,
                    clusters_available() ? kMaxClusterSplits : kMaxSplits);
}
// Heads of at most 64 take teams of at most 8 threads a position, so one 512-thread block
// holds a head's 64 teams and no merge crosses blocks: faster below 512 positions (Phi-1.5,
// 3 bits, 128-token prompt: +2.5%), slower past 1000 (-2.2% after a 1024-token prompt;
// sweeps/stop26-attention-small-heads.md).
constexpr int kSmallHead = 64, kSmallHeadThreads = 512, kSmallHeadContext = 512;
bool one_block_a_head(int head_dim, int context) { return head_dim <= kSmallHead && context < kSmallHeadContext; }

size_t smem_bytes(int head_dim, int max_ctx, int splits, int threads) {
  const int chunk = (max_ctx + splits - 1) / splits;  // the score row of a split (heads not a multiple of 8)
  return sizeof(float) * size_t(4 * head_dim + std::max(8 * threads, head_dim) + chunk);
}
}  // namespace

int attention_decode_splits(int n_heads, int head_dim, int max_ctx, int context) {
  if (const char* e = std::getenv("PMPD_CUDA_ATTN_SPLITS")) return std::clamp(std::atoi(e), 1, kMaxSplits);
  if (one_block_a_head(head_dim, context)) return 1;
  if (context < kLongContext) return short_splits(n_heads, max_ctx);
  // Long contexts: 128-thread blocks, about four an SM, at least 32 positions a split at the
  // full context, merged through global memory past a cluster. Vicuna-7B, 3 bits: 16 splits
  // against 8 +1.5% at a 1920-token context, +4.3% at 3968 (sweeps/stop20-attention-pipeline.md).
  const int want = (2 * multiprocessor_count() + n_heads - 1) / n_heads;
  const int base = std::clamp(std::min(want, max_ctx / 32), 1, clusters_available() ? kMaxClusterSplits : kMaxSplits);
  return std::min({kMaxSplits, 2 * base, std::max(1, max_ctx / 32)});
}

int attention_decode_threads(int n_heads, int head_dim, int max_ctx, int splits) {
  static const int forced = [] {
    const char* e = std::getenv("PMPD_CUDA_ATTN_THREADS");
    if (!e) return 0;
    const int t = std::atoi(e);
    return t >= 512 ? 512 : t >= 256 ? 256 : 128;
  }();
  if (forced) return forced;
  if (splits == 1 && head_dim <= kSmallHead) return kSmallHeadThreads;
  return splits <= short_splits(n_heads, max_ctx) ? kShortThreads : kDecodeThreads;
}

size_t attention_decode_smem_bytes(int head_dim, int max_ctx, int splits) {
  return smem_bytes(head_dim, max_ctx, splits, kMaxDecodeThreads);  // enough for any block size
}

size_t attention_decode_partial_floats(int n_heads, int head_dim, int splits) {
  return size_t(n_heads) * size_t(splits) * size_t(head_dim + 2);
}

void attention_decode(const DecodeAttentionArgs& a, void* stream) {
  const int threads = a.threads ? a.threads : attention_decode_threads(a.n_heads, a.head_dim, a.max_ctx, a.splits);
  PMPD_CUDA_REQUIRE(a.head_dim <= kMaxHeadDim && a.splits >= 1 && a.splits <= kMaxSplits,
                    "decode attention: bad head size or split count");
  PMPD_CUDA_REQUIRE(threads % 32 == 0 && threads >= 32 && threads <= kMaxDecodeThreads, "decode attention: bad block size");
  const size_t smem = smem_bytes(a.head_dim, a.max_ctx, a.splits, threads);
  allow_dynamic_smem<attention_decode_kernel>(smem);
  DecodeAttentionArgs args = a;
  args.cluster_merge = a.splits > 1 && a.splits <= kMaxClusterSplits && clusters_available();
  // A head's splits form one cluster where they merge in it (grid y = cluster y = splits).
  const dim3 cluster(1, args.cluster_merge ? unsigned(a.splits) : 1u, 1);
  launch_chained_clusters(attention_decode_kernel, dim3(unsigned(a.n_heads), unsigned(a.splits)), dim3(unsigned(threads)),
                          cluster, smem, static_cast<cudaStream_t>(stream), args);
}

}  // namespace pmpd::cuda
