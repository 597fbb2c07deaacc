// The decode GEMV on tensor cores for every width 2..8 (docs/cuda.md, kernels v4 to v7). The
// bit-plane GEMV of bitplane_gemv.cu spends ~6 integer instructions and 1.25 shared-memory
// reads per weight and reaches a quarter of HBM bandwidth on an H100; here a weight costs
// about one instruction at 2..4 bits (pair tables, below) and about four at 5..8 (single-weight
// tables: "Widths 5..8" further down):
//  - the planes are re-tiled at load (tile_bitplanes) so that each lane's 32-bit word of a
//    plane holds exactly the weights it feeds to mma.m16n8k16 (lane 4g + t: row g of its
//    row block, the column pairs of fragment registers 2t and 2t + 8), in a bit order that
//    does not depend on the width read: narrower widths still read fewer planes;
//  - B plane words become 4 registers of pair indices with B+1 integer operations each
//    (mask-merge, one rotate): every byte holds the interleaved codes of two weights;
//  - a pair index becomes a shared-memory address with one PRMT, and one 32-bit load of a
//    "pair table" (2^(2B) entries of f16x2: both weights' centroids) gives an mma operand
//    register. Each lane has its own copy of the table in its own bank: no bank conflicts;
//  - the weights are the A operand of mma.m16n8k16 (16 rows x 16 columns, both row blocks
//    of 8 in one instruction) and x the B operand (every one of its 8 columns holds x, so
//    any column of D is y): 256 weights an mma, and x's fragment is two registers that one
//    shared-memory load fills for two k-blocks;
//  - mma accumulates in f32; x enters in f16 (as the 16-bit cuBLAS path's does).
// A block owns 16 rows at a time (a task); its 16 warps split the columns and share the
// tables. Blocks are persistent: each stages x once, then loops over tasks while later
// items' planes are already in flight (a per-warp prefetch ring, one item ahead at 2-3 and
// 5-8 bits and two at 4, that runs across task boundaries; at 2..4 bits all the block's
// centroids copied up front with cp.async, at 5..8 a task's loaded a task ahead; double-
// buffered tables and partial sums, one barrier a task). The tiles also serve the prompt
// pass's dequantization (tile_dequant_kernel, the same decode) and the DNS corrections, so
// they are the only copy of a matrix on the device wherever they hold every width.
// A fused gate|up matrix's tiles interleave gate and up rows so that its GEMV can write the
// down projection's input (act(gate) * up) as f16 fragments (GemvOutput::fragments).
// Further down, the streaming GEMV (pair_lut_stream_kernel, stop 22) serves 2..3-bit matrices
// of 4096 columns: each warp keeps its columns of x in registers and walks every task of its
// block with nothing between items; the rolling one (pair_lut_roll_kernel, stop 35) does the
// same at 4 bits with three tasks' tables a block, rebuilt as the warps move on, and
// wide_roll_kernel (stop 39) at 5, 6 and 8 bits with four tasks' single-weight tables.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/fragment_order.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tile_decode.cuh"
#include "kernels/cuda/timeline.cuh"

namespace pmpd::cuda {

PMPD_TIMELINE_UNIT(pair_lut_gemv)

namespace {

// p[c .. c+3] (zero past cols), one input row of the prologue. Whole quads of 16-byte
// aligned inputs are read as float4 (one load instead of four: staging x is the
// block's start-up, and every block does it).
__device__ __forceinline__ float4 load_quad(const float* p, int cols, int c, bool vec) {
  if (vec && c + 3 < cols) return *reinterpret_cast<const float4*>(p + c);
  float4 v;
  v.x = c < cols ? p[c] : 0.f, v.y = c + 1 < cols ? p[c + 1] : 0.f;
  v.z = c + 2 < cols ? p[c + 2] : 0.f, v.w = c + 3 < cols ? p[c + 3] : 0.f;
  return v;
}
template <GemvPrologue P>
__device__ __forceinline__ float prologue_one(const GemvInput& in, float x, float x2, float w, float b, float scale,
                                              float mean) {
  if constexpr (P == GemvPrologue::None) return x;
  if constexpr (P == GemvPrologue::RmsNorm) return w * (x * scale);
  if constexpr (P == GemvPrologue::LayerNorm) return (x - mean) * scale * w + b;
  // x enters the mma in f16, so the fast exponential's few ulps do not show.
  if constexpr (P == GemvPrologue::GatedActivation) return dev::activation(x, in.act, true) * x2;
  if constexpr (P == GemvPrologue::Activation) return dev::activation(x, in.act, true);
  return 0.f;
}

template <GemvPrologue P>
__device__ void store_fragments(const GemvInput& in, int cols, int padded, float scale, float mean, bool vec,
                                uint32_t* xw) {
  const bool norm = P == GemvPrologue::RmsNorm || P == GemvPrologue::LayerNorm;
#pragma unroll 2
  for (int c = 4 * threadIdx.x; c < padded; c += 4 * blockDim.x) {
    const float4 x = load_quad(in.x, cols, c, vec);
    const float4 x2 = P == GemvPrologue::GatedActivation ? load_quad(in.x + cols, cols, c, vec) : float4{};
    const float4 w = norm ? load_quad(in.norm_w, cols, c, vec) : float4{};
    const float4 b = P == GemvPrologue::LayerNorm && in.norm_b ? load_quad(in.norm_b, cols, c, vec) : float4{};
    // Zero past cols whatever the prologue (LayerNorm of a zero is not zero).
    auto value = [&](float xv, float x2v, float wv, float bv, int cc) {
      return cc < cols ? prologue_one<P>(in, xv, x2v, wv, bv, scale, mean) : 0.f;
    };
    xw[x_slot(c) / 2] = pack_half2(__float2half_rn(value(x.x, x2.x, w.x, b.x, c)),
                                   __float2half_rn(value(x.y, x2.y, w.y, b.y, c + 1)));
    xw[x_slot(c + 2) / 2] = pack_half2(__float2half_rn(value(x.z, x2.z, w.z, b.z, c + 2)),
                                       __float2half_rn(value(x.w, x2.w, w.w, b.w, c + 3)));
  }
}

// in(x) into xs, four columns a thread at a time; the loops are unrolled so that each
// thread's loads of x are in flight together.
// 32-bit column indices: x fits in shared memory, so far below 2^31 columns.
__device__ void stage_fragments(const GemvInput& in, int cols, int padded, __half* xs) {
  float scale = 1.f, mean = 0.f;
  // float4 loads where every input row is 16-byte aligned and whole quads fit.
  const bool vec = cols % 4 == 0 && (reinterpret_cast<uintptr_t>(in.x) & 15) == 0 &&
                   (reinterpret_cast<uintptr_t>(in.norm_w) & 15) == 0 && (reinterpret_cast<uintptr_t>(in.norm_b) & 15) == 0;
  auto quad_sum = [&](auto term) {  // the block's sum of term(x) over the columns
    float s = 0.f;
#pragma unroll 2
    for (int c = 4 * threadIdx.x; c < cols; c += 4 * blockDim.x) {
      const float4 q = load_quad(in.x, cols, c, vec);
      s += term(q.x, c) + term(q.y, c + 1) + term(q.z, c + 2) + term(q.w, c + 3);
    }
    return dev::block_sum(s);
  };
  if (in.prologue == GemvPrologue::RmsNorm) {
    scale = rsqrtf(quad_sum([](float v, int) { return v * v; }) / float(cols) + in.eps);
  } else if (in.prologue == GemvPrologue::LayerNorm) {
    mean = quad_sum([](float v, int) { return v; }) / float(cols);
    scale = rsqrtf(quad_sum([&](float v, int c) { return c < cols ? (v - mean) * (v - mean) : 0.f; }) / float(cols) +
                   in.eps);
  }
  uint32_t* xw = reinterpret_cast<uint32_t*>(xs);
  switch (in.prologue) {  // one loop per operator: no branch per element
    case GemvPrologue::None: store_fragments<GemvPrologue::None>(in, cols, padded, scale, mean, vec, xw); break;
    case GemvPrologue::RmsNorm: store_fragments<GemvPrologue::RmsNorm>(in, cols, padded, scale, mean, vec, xw); break;
    case GemvPrologue::LayerNorm: store_fragments<GemvPrologue::LayerNorm>(in, cols, padded, scale, mean, vec, xw); break;
    case GemvPrologue::GatedActivation:
      store_fragments<GemvPrologue::GatedActivation>(in, cols, padded, scale, mean, vec, xw);
      break;
    case GemvPrologue::Activation: store_fragments<GemvPrologue::Activation>(in, cols, padded, scale, mean, vec, xw); break;
    case GemvPrologue::Fragments: break;  // copied by the kernel (copy_fragments)
  }
}

// The previous GEMV's fragments (GemvOutput::fragments) into xs as they are: 16 bytes a copy.
__device__ __forceinline__ void copy_fragments(const uint16_t* fragments, int padded, __half* xs) {
  const uint4* src = reinterpret_cast<const uint4*>(fragments);
  uint4* dst = reinterpret_cast<uint4*>(xs);
  for (int i = threadIdx.x; i < padded / 8; i += blockDim.x) dev::copy_async<16>(dst + i, src + i, true);
  dev::copy_async_commit();
}

// Column c of the next GEMV's input, in its fragment order: act(v), or act(v) * up for a
// gate row and its up row's output (as the down projection's prologue computes it).
__device__ __forceinline__ void write_fragment(const GemvOutput& out, int c, float v, float up = 1.f) {
  out.fragments[x_slot(c)] = __half_as_ushort(__float2half_rn(dev::activation(v, out.act, true) * up));
}


// The norm's weights (and bias) into L1 before the wait on the kernel before: they do not
// depend on it, and staging x reads them right after. A 128-byte line a thread.
__device__ __forceinline__ void prefetch_norm(const GemvInput& in, int cols) {
  if (in.prologue == GemvPrologue::RmsNorm || in.prologue == GemvPrologue::LayerNorm)
    for (int c = 32 * threadIdx.x; c < cols; c += 32 * blockDim.x) {
      dev::prefetch_l1(in.norm_w + c);
      if (in.norm_b) dev::prefetch_l1(in.norm_b + c);
    }
}

// DNS outliers replace the dense weight: warp w's sum, over the outliers of row w of the task,
// of (value - dense) * x (x as staged in xs).
template <int B, bool Mapped>
__device__ __forceinline__ float outlier_correction(const DeviceBitPlanes& m, uint32_t plane_words, int cp32, int task,
                                                    int warp, int lane, const __half* xs) {
  const int r = task_row<Mapped>(m, task, warp);
  float s = 0.f;
  if (r >= 0)
    for (int32_t i = m.sp_rowptr[r] + lane; i < m.sp_rowptr[r + 1]; i += 32) {
      const int64_t j = m.sp_col[i];
      s += outlier_delta<B>(m, plane_words, cp32, task, warp, r, i, int(j)) * __half2float(xs[x_slot(j)]);
    }
  return dev::warp_sum(s);
}

// A warp's partial sums of a task's 16 rows from its two mma chains: D's columns are equal, and
// lane 4g holds row g (c0) and row 8 + g (c2) in column 0.
__device__ __forceinline__ void write_warp_partials(float* part, int warp, int lane, const float (&acc)[2][4]) {
  if ((lane & 3) == 0) {
    part[warp * kRows + lane / 4] = acc[0][0] + acc[1][0];
    part[warp * kRows + 8 + lane / 4] = acc[0][2] + acc[1][2];
  }
}

// Row l (0..15) of a task summed over its partial sums part[w * kRows + l] of `warps` warps,
// the DNS outliers' part[kWarps * kRows + l] first where `outliers`: one order for every
// epilogue, so the task loop, the streaming GEMV and its column slices give the same bits.
// Every warp's sum is loaded before the first add (the buffer holds kWarps of them), so the
// row costs one shared-memory round trip: a loop bounded by `warps`, which nvcc unrolls by
// four, paid one per four loads on every streaming block's tail (stop 43: +2.9% at 3 bits).
__device__ __forceinline__ float task_row_sum(const float* part, int l, int warps, bool outliers) {
  float v[kWarps];
#pragma unroll
  for (int w = 0; w < kWarps; ++w) v[w] = part[w * kRows + l];
  float s = outliers ? part[kWarps * kRows + l] : 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w)
    if (w < warps) s += v[w];
  return s;
}

// Row r's value from its sum over all columns: times `scale` (a folded RMSNorm's, else 1), plus
// its bias.
__device__ __forceinline__ float row_value(const GemvOutput& out, int r, float sum, float scale) {
  return sum * scale + (out.bias && r >= 0 ? out.bias[r] : 0.f);
}

// Row r's value v into y (added to y_old, the row's value loaded before, where out.accumulate);
// returns what it stores (for rows past the matrix, r < 0, nothing: callers return 0 for them).
__device__ __forceinline__ float store_row(const GemvOutput& out, int r, float v, float y_old) {
  const float y = out.accumulate ? y_old + v : v;
  if (r >= 0) out.y[r] = y;
  return y;
}

// Row i (0..15) of a task from its partial sums (task_row_sum), into y (store_row) and, where
// asked, into the next GEMV's fragments. Returns the row's final value (0 past the rows).
template <bool Mapped>
__device__ __forceinline__ float write_task_row(const DeviceBitPlanes& m, const GemvOutput& out, const float* part,
                                                int task, int i, int warps, float scale, float y_old) {
  auto value = [&](int l, int r) { return row_value(out, r, task_row_sum(part, l, warps, m.nnz != 0), scale); };
  const int r = task_row<Mapped>(m, task, i);
  const float v = value(i, r), y = store_row(out, r, v, y_old);
  if constexpr (Mapped) {
    // A gate row's up row is lane i + 8's (lanes 0..15 of a warp hold the task's rows): its
    // value by shuffle, not summed again after the gate row's.
    const float up = __shfl_down_sync(0xffffu, v, 8, 16);
    if (out.fragments && r >= 0) {
      if (out.fragment_op != GemvPrologue::GatedActivation) write_fragment(out, r, v);
      else if (i < 8) write_fragment(out, r, v, up);
    }
  }
  return r >= 0 ? y : 0.f;
}

// Column slices (pair_lut_stream_kernel's Slices): lanes 0..15 of one warp hand in their rows'
// sums over this block's slice of a task; true in the block that arrives last of the task's
// Slices, where `sum` becomes the whole rows' sums, added in slice order (not arrival order: the
// same bits every run). Lane 0 counts the block in with one acq_rel atomic (releasing the
// lanes' stores, ordered before it by the warp barrier; in the last block, acquiring the other
// blocks'): stop 33 measured it 0.4-0.5% faster end to end than __threadfence on both sides. The
// last block puts the count back to zero for the next launch.
template <int Slices>
__device__ __forceinline__ bool slices_meet(const GemvOutput& out, int task, int slice, int lane, float& sum) {
  float* sums = out.slice_partials + size_t(task) * Slices * kRows;
  __stcg(sums + slice * kRows + lane, sum);
  __syncwarp(0xffffu);  // orders the lanes' stores before lane 0's release
  unsigned last = 0;
  if (lane == 0) last = dev::count_in_acq_rel(out.slice_counts + task) == unsigned(Slices - 1);
  if (!__shfl_sync(0xffffu, last, 0)) return false;
  __syncwarp(0xffffu);  // and lane 0's acquire before the lanes' loads
  float total = 0.f;
#pragma unroll
  for (int k = 0; k < Slices; ++k) total += k == slice ? sum : __ldcg(sums + k * kRows + lane);
  if (lane == 0) out.slice_counts[task] = 0u;
  sum = total;
  return true;
}

// The row's value before a residual add (out.accumulate), loaded ahead of write_task_row: only
// after the wait on the kernel before, which may write it.
template <bool Mapped>
__device__ __forceinline__ float residual_of(const DeviceBitPlanes& m, const GemvOutput& out, int task, int i) {
  const int r = task_row<Mapped>(m, task, i);
  return out.accumulate && r >= 0 ? __ldcg(out.y + r) : 0.f;
}
// The folded norm's weight of the row (GemvOutput::norm_w), loaded ahead: it needs no wait.
template <bool Mapped>
__device__ __forceinline__ float norm_weight_of(const DeviceBitPlanes& m, const GemvOutput& out, int task, int i) {
  const int r = task_row<Mapped>(m, task, i);
  return out.norm_fragments && r >= 0 ? __ldg(out.norm_w + r) : 0.f;
}

// The next GEMV's folded RMSNorm (GemvOutput::norm_fragments) from row i of a task, by lanes
// 0..15 of one warp together: f16(norm weight * y) into the fragments, and the task's sum of
// y^2 (in a fixed order: the same bits every run) into sumsq_partials.
template <bool Mapped>
__device__ __forceinline__ void write_norm_fold(const DeviceBitPlanes& m, const GemvOutput& out, int task, int i,
                                                float y, float norm_w) {
  const int r = task_row<Mapped>(m, task, i);
  if (r >= 0) out.norm_fragments[x_slot(r)] = __half_as_ushort(__float2half_rn(norm_w * y));
  float sq = y * y;
#pragma unroll
  for (int o = 8; o > 0; o /= 2) sq += __shfl_xor_sync(0xffffu, sq, o);
  if (i == 0) out.sumsq_partials[task] = sq;
}

// A folded RMSNorm's scale, norm_gain / sqrt(mean x^2 + eps), from the tasks' sums of squares
// (GemvInput::sumsq_partials), into *scale by the last warp, in a fixed order; called after
// the wait, while x's fragments are on their way (their barrier publishes it).
__device__ __forceinline__ void stage_norm_scale(const GemvInput& in, int cols, int warp, int lane, float* scale) {
  if (!in.sumsq_partials || warp != kWarps - 1) return;
  // Unconditional loads (indices clamped, the extra ones dropped after) so that all are in
  // flight at once: one round trip up to 8192 columns (a loop with a bound ran one a load).
  constexpr int kLoads = 16;
  const int count = (cols + kRows - 1) / kRows;
  float v[kLoads];
#pragma unroll
  for (int k = 0; k < kLoads; ++k) v[k] = __ldcg(in.sumsq_partials + min(lane + 32 * k, count - 1));
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < kLoads; ++k) s += lane + 32 * k < count ? v[k] : 0.f;
  for (int t = lane + 32 * kLoads; t < count; t += 32) s += __ldcg(in.sumsq_partials + t);
  s = dev::warp_sum(s);
  if (lane == 0) *scale = rsqrtf(s / float(cols) + in.eps) * in.norm_gain;
}

// Blocks an SM: two at 2-3 bits (64 registers a thread, one item ahead), one from 4 bits
// (tables of 64 KiB; 128 registers; two items ahead at 4 bits, one at 5..8, whose items are
// up to twice as many registers). 2..3 bits also run as one block an SM with two items ahead
// where that costs no SMs (one_block_pays, set_pair_lut_one_block_cols).
template <int B>
constexpr int default_blocks() {
  return B <= 3 ? 2 : 1;
}

// Mapped: tiles that may interleave two halves of rows, and an output that may also be
// written as the next GEMV's fragments (a fused gate|up or an MLP's first projection).
template <int B, int Blocks, bool Mapped>
__global__ void __launch_bounds__(kThreads, Blocks) pair_lut_gemv_kernel(DeviceBitPlanes m, GemvInput in, GemvOutput out, int rounds) {
  extern __shared__ __align__(16) uint8_t smem[];
  const Layout lay = layout_of(m);
  const int64_t padded = lay.chunk_pairs * 256, tasks = lay.row_blocks / 2, CP = lay.chunk_pairs;
  constexpr bool Wide = is_wide<B>();
  // The tables' two buffers, aligned as their absolute addresses need
  const uint32_t smem_address = uint32_t(__cvta_generic_to_shared(smem));
  const uint32_t align = table_align<B>();
  uint8_t* tables = smem + ((align - smem_address % align) % align);
  const uint32_t tables_address = uint32_t(__cvta_generic_to_shared(tables));
  __half* xs = reinterpret_cast<__half*>(tables + table_region_bytes<B>());
  float* partial = reinterpret_cast<float*>(tables + table_region_bytes<B>() + size_t(padded) * 2);  // [2][kWarps + 1][16]
  // 2..4 bits: the centroids of all this block's tasks, [rounds][16 rows][2^B], loaded once up front.
  __half* cent = reinterpret_cast<__half*>(partial + 2 * (kWarps + 1) * kRows);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint4* xsv = reinterpret_cast<const uint4*>(xs);
  PMPD_TIMELINE_BEGIN(timeline::TaskLoopGemv, B, reinterpret_cast<uintptr_t>(m.tiled));
  dev::let_next_start();  // the next kernel's blocks may start fetching as ours finish

  // This warp's stream of work: (task, chunk pair) for the block's tasks, cp = warp,
  // warp + 16, ...; loads run one item ahead of the computation, across tasks.
  // 32-bit indices (the host checks the tiles fit): 64-bit address arithmetic was a tenth
  // of the loop's instructions.
  struct Item {
    int task, cp;
  };
  const int tasks32 = int(tasks), cp32 = int(CP);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(CP) * 32u;  // in uint2
  auto advance = [&](Item it) {
    it.cp += kWarps;
    if (it.cp >= cp32) it.cp = warp, it.task += int(gridDim.x);
    return it;
  };
  auto valid = [&](const Item& it) { return warp < cp32 && it.task < tasks32; };
  auto load = [&](const Item& it, uint2 (&dst)[2][B]) {
    if (valid(it)) load_item<B>(tiled, plane_words, cp32, it.task, it.cp, lane, dst);
  };
  // w[0]: the item being computed; w[1..Ahead]: the next ones, in flight. One block an SM
  // (128 registers) keeps two items ahead; two blocks (64 registers) have room for one.
  constexpr int Ahead = Blocks == 1 && !Wide ? 2 : 1;
  uint2 w[Ahead + 1][2][B];
  Item next{int(blockIdx.x), warp};  // the item loaded next
#pragma unroll
  for (int j = 0; j < Ahead; ++j) load(next, w[j]), next = advance(next);
  WideTableFill<B, Mapped> fill;
  if constexpr (Wide) {  // the first task's centroids, straight into registers
    fill.init();
    fill.load(m, int(blockIdx.x));
  } else {  // asynchronous copies: no thread waits on these loads before it goes on to x
    const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
    constexpr int kCopy = (2 << B) < 16 ? (2 << B) : 16, kCopies = (2 << B) / kCopy;  // bytes a copy, copies a row
    for (int i = threadIdx.x; i < rounds * kRows * kCopies; i += blockDim.x) {
      const int slot = i / kCopies, part = i % kCopies;
      const int64_t task = blockIdx.x + int64_t(slot / kRows) * gridDim.x;
      const int row = task < tasks ? task_row<Mapped>(m, int(task), slot % kRows) : -1;
      const bool inside = row >= 0;
      dev::copy_async<kCopy>(reinterpret_cast<uint8_t*>(cent + (slot << B)) + part * kCopy,
                             reinterpret_cast<const uint8_t*>(table + (inside ? row << B : 0)) + part * kCopy, inside);
    }
    dev::copy_async_commit();
  }
  prefetch_norm(in, int(m.cols));
  // 2..4 bits: the first task's tables need none of x, so they are built before the wait,
  // while the kernel before this one finishes (1-2% end to end, stop 22). The wide tables
  // wait for their centroids' loads first, and built there they cost 1-3% at 8 bits: they
  // follow x, as before.
  TableBuild<Wide ? 4 : B> share;  // (unused by the wide decoder)
  if constexpr (!Wide) {
    dev::copy_async_wait_all();  // the centroids
    __syncthreads();
    share.load(cent);
    share.store(tables);
  }
  PMPD_TIMELINE_MARK(1);
  dev::wait_for_producer();  // the weight loads above are in flight; x is the previous kernel's output
  PMPD_TIMELINE_MARK(2);
  if (in.prologue == GemvPrologue::Fragments) copy_fragments(in.fragments, int(padded), xs);
  else stage_fragments(in, int(m.cols), int(padded), xs);  // once per block
  __shared__ float norm_scale;
  stage_norm_scale(in, int(m.cols), warp, lane, &norm_scale);
  dev::copy_async_wait_all();
  __syncthreads();
  if constexpr (Wide) {
    fill.store(tables_address, 0);
    __syncthreads();
  }
  PMPD_TIMELINE_MARK(3);

  int buf = 0;
  for (int64_t task = blockIdx.x, n = 0; task < tasks; task += gridDim.x, buf ^= 1, ++n) {
    const int64_t next_task = task + gridDim.x;
    // The epilogue's loads of this task's rows, in flight during its items; at 5..8 bits at the
    // end (two more registers live through the wide decode cost up to 7% at 8 bits).
    const bool writer = threadIdx.x < kRows;
    const float y_old = writer && !Wide ? residual_of<Mapped>(m, out, int(task), threadIdx.x) : 0.f;
    const float norm_w = writer && !Wide ? norm_weight_of<Mapped>(m, out, int(task), threadIdx.x) : 0.f;
    TableAddress<Wide ? 4 : B> ta;
    uint32_t wide_base[2];  // the wide decoder's lane bases, per row block
    if constexpr (Wide) {
      wide_base[0] = tables_address | uint32_t(buf * 128 + 4 * lane), wide_base[1] = wide_base[0] | 2u;
      if (next_task < tasks) fill.load(m, int(next_task));  // in flight during this task
    } else {
      ta.set(tables_address, tables, uint32_t(buf * table_bytes<B>()), lane);
    }
    float acc[2][4] = {};  // two chains; D column 0 of each: rows g and 8 + g
    for (int cp = warp; cp < cp32; cp += kWarps) {
      load(next, w[Ahead]);  // a later item (of this task or of the next ones)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        uint32_t p[2][B];
        item_half<B>(w[0], h, p);
        if constexpr (Wide) chunk_mma_wide<B>(p, xsv + (2 * cp + h) * 16 + (lane & 3), wide_base, acc);
        else chunk_mma<B>(p, xsv + (2 * cp + h) * 16 + (lane & 3), ta, acc);
      }
#pragma unroll
      for (int q = 0; q < 2; ++q)
#pragma unroll
        for (int k = 0; k < B; ++k)
#pragma unroll
          for (int j = 0; j < Ahead; ++j) w[j][q][k] = w[j + 1][q][k];
      next = advance(next);
    }
    float* part = partial + buf * (kWarps + 1) * kRows;
    write_warp_partials(part, warp, lane, acc);
    if (next_task < tasks) {
      if constexpr (Wide) {
        fill.store(tables_address, buf ^ 1);
      } else {
        share.load(cent + ((n + 1) * kRows << B));
        share.store(tables + (buf ^ 1) * table_bytes<B>());
      }
    }
    if (m.nnz) {  // warp w: row w's DNS outliers
      const float s = outlier_correction<B, Mapped>(m, plane_words, cp32, int(task), warp, lane, xs);
      if (lane == 0) part[kWarps * kRows + warp] = s;
    }
    __syncthreads();  // partial sums and the next task's tables are complete
    if (n == 0) PMPD_TIMELINE_MARK(4);
    PMPD_TIMELINE_MARK(5);
    if (writer) {
      const float scale = in.sumsq_partials ? norm_scale : 1.f;
      const float y = write_task_row<Mapped>(m, out, part, int(task), threadIdx.x, kWarps, scale,
                                             Wide ? residual_of<Mapped>(m, out, int(task), threadIdx.x) : y_old);
      if (out.norm_fragments)
        write_norm_fold<Mapped>(m, out, int(task), threadIdx.x, y,
                                Wide ? norm_weight_of<Mapped>(m, out, int(task), threadIdx.x) : norm_w);
    }
  }
  PMPD_TIMELINE_MARK(6);
}

// x of chunk pair cp into a streaming warp's registers, at the indices chunk_mma reads (4 r of
// each half), from the fragments the kernel before wrote (x_direct) or from x staged in shared
// memory (x_staged); zeros where the warp has no chunk pair (has_x false).
__device__ __forceinline__ void x_direct(const uint16_t* fragments, int cp, int lane, bool has_x, uint4 (&xr)[2][16]) {
  const uint4* xg = reinterpret_cast<const uint4*>(fragments);
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int r = 0; r < 4; ++r) xr[h][4 * r] = has_x ? __ldcg(xg + (2 * cp + h) * 16 + (lane & 3) + 4 * r) : uint4{};
}
__device__ __forceinline__ void x_staged(const __half* xs, int cp, int lane, bool has_x, uint4 (&xr)[2][16]) {
  const uint4* xsv = reinterpret_cast<const uint4*>(xs);
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int r = 0; r < 4; ++r) xr[h][4 * r] = has_x ? xsv[(2 * cp + h) * 16 + (lane & 3) + 4 * r] : uint4{};
}

// The centroids of a streaming block's n tasks (task_of(i): its task i) into cent [n][16][2^B],
// asynchronously (committed, not waited for): 16 bytes a copy at most, so a 4-bit row takes two.
template <int B, bool Mapped, class TaskOf>
__device__ __forceinline__ void copy_task_centroids(const DeviceBitPlanes& m, int n, const TaskOf& task_of, __half* cent) {
  const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
  constexpr int kRowBytes = 2 << B, kCopy = kRowBytes < 16 ? kRowBytes : 16, kCopies = kRowBytes / kCopy;
  for (int i = threadIdx.x; i < n * kRows * kCopies; i += blockDim.x) {
    const int slot = i / kCopies, part = i % kCopies;
    const int row = task_row<Mapped>(m, task_of(slot / kRows), slot % kRows);
    dev::copy_async<kCopy>(reinterpret_cast<uint8_t*>(cent + (slot << B)) + part * kCopy,
                           reinterpret_cast<const uint8_t*>(table + (row >= 0 ? row << B : 0)) + part * kCopy, row >= 0);
  }
  dev::copy_async_commit();
}

// One item (chunk pair w of a task, its plane words in `item`) decoded against the task's tables
// at `table` (its shared-memory address and pointer), x in registers; its 16 rows' partial sums
// into column w of part.
template <int B>
__device__ __forceinline__ void decode_item(const uint2 (&item)[2][B], const uint4 (&xr)[2][16], uint32_t tables_address,
                                            const uint8_t* tables, uint32_t table_offset, float* part, int w, int lane) {
  TableAddress<B> ta;
  ta.set(tables_address, tables, table_offset, lane);
  float acc[2][4] = {};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint32_t p[2][B];
    item_half<B>(item, h, p);
    chunk_mma<B>(p, xr[h], ta, acc);
  }
  write_warp_partials(part, w, lane, acc);
}

// The streaming kernels' wait on the kernel before: first the barrier that publishes the tables
// where x then goes straight into registers (no barrier after the wait would), so the tables
// are built while that kernel finishes.
__device__ __forceinline__ void publish_tables_and_wait(bool direct_x) {
  if (direct_x) __syncthreads();
  PMPD_TIMELINE_MARK(2);
  dev::wait_for_producer();
  PMPD_TIMELINE_MARK(3);
}

// A streaming block's rows after its items: lanes 0..15 of warp w write its tasks w, w + 16, ...
// (task_of(i): the block's task i; partial: [n][kWarps + 1][16], `busy` warps' sums a task),
// with the residual and the folded norm's weight of each warp's first task loaded ahead (y_old,
// norm_w). Slices > 1: this block's slice of each task, the rows written by the task's last
// slice to arrive (slices_meet).
template <bool Mapped, int Slices, class TaskOf>
__device__ __forceinline__ void write_block_rows(const DeviceBitPlanes& m, const GemvOutput& out, const float* partial,
                                                 int n, const TaskOf& task_of, int slice, int busy, float scale,
                                                 float y_old, float norm_w) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if constexpr (Slices > 1) {
    for (int i = warp; i < n; i += kWarps)
      if (lane < kRows) {
        const int task = task_of(i);
        const float* part = partial + size_t(i) * (kWarps + 1) * kRows;
        float sum = task_row_sum(part, lane, busy, m.nnz && slice == 0);
        if (!slices_meet<Slices>(out, task, slice, lane, sum)) continue;  // another slice's block writes the rows
        const bool first_rows = i == warp;
        const float before = first_rows ? y_old : residual_of<false>(m, out, task, lane);
        const int r = task_row<false>(m, task, lane);
        const float stored = store_row(out, r, row_value(out, r, sum, scale), before);
        const float y = r >= 0 ? stored : 0.f;
        if (first_rows) PMPD_TIMELINE_MARK(9);  // thread 0's first rows, where its block writes them
        if (out.norm_fragments)
          write_norm_fold<false>(m, out, task, lane, y, first_rows ? norm_w : norm_weight_of<false>(m, out, task, lane));
      }
  } else {
    for (int i = warp; i < n; i += kWarps)
      if (lane < kRows) {
        const bool first_rows = i == warp;  // loaded ahead
        const int task = task_of(i);
        const float y = write_task_row<Mapped>(m, out, partial + size_t(i) * (kWarps + 1) * kRows, task, lane, busy,
                                               scale, first_rows ? y_old : residual_of<Mapped>(m, out, task, lane));
        if (first_rows) PMPD_TIMELINE_MARK(9);
        if (out.norm_fragments)
          write_norm_fold<Mapped>(m, out, task, lane, y, first_rows ? norm_w : norm_weight_of<Mapped>(m, out, task, lane));
      }
  }
}

// ---- The streaming GEMV (2..3 bits, up to 16 chunk pairs of columns; stops 22-23) ----
// The task loop above has each warp decode one item of a 16-row task, then do its share of
// the task's work (the next task's tables, partial sums, the barrier): at 4096 columns its
// streaming rate is ~50% of copy bandwidth at 3 bits, while the same decode streamed with x
// in registers and nothing in between reaches ~91% (`pmpd bench --gemv-ceiling`). Here each
// warp owns one chunk pair of columns, keeps its x in registers and walks its share of the
// block's tasks, one item each, with nothing in between: all the block's tables are built once,
// before the wait on the kernel before, and every task's partial sums are kept and summed after
// one barrier at the end. One block an SM (the tables of all its tasks fill shared memory).
// Grouped: fewer than 16 chunk pairs (2048 columns: 8), the warps form floor(16 / CP) groups
// that share out the tasks (the rest idle: 2560 columns, 10 chunk pairs, leaves 6). Each warp
// keeps Ahead items in flight (1 or 2: stream_ahead). Its speed proved sensitive to the form of
// its code (forms doing the same work ran up to 16% apart at 3 bits, stop 23), so the
// 16-chunk-pair instantiations are kept PTX for PTX as measured; see the notes below.
// Slices > 1 (stop 33): a matrix of more than 16 chunk pairs (the down projections) cut into
// Slices column slices of at most 16 chunk pairs; block b sums slice b % Slices of its tasks
// (its warps each one chunk pair of the slice, x in registers as above) and the last of a
// task's Slices blocks adds their sums (GemvOutput::slice_partials) and writes the rows.
template <int B, bool Mapped, int Ahead, bool Grouped, int Slices = 1>
__global__ void __launch_bounds__(kThreads, 1)
    pair_lut_stream_kernel(DeviceBitPlanes m, GemvInput in, GemvOutput out, int rounds) {
  static_assert(Slices == 1 || (!Mapped && !Grouped), "column slices: plain outputs, a chunk pair a warp");
  extern __shared__ __align__(16) uint8_t smem[];
  const Layout lay = layout_of(m);
  const int64_t padded = lay.chunk_pairs * 256;
  const int cp32 = int(lay.chunk_pairs), tasks32 = int(lay.row_blocks / 2);
  constexpr uint32_t kTable = uint32_t(table_bytes<B>());
  // `rounds` tables, each aligned to its size (their absolute addresses), then x, the partial
  // sums [rounds][kWarps + 1][16] and the centroids [rounds][16][2^B].
  const uint32_t smem_address = uint32_t(__cvta_generic_to_shared(smem));
  uint8_t* tables = smem + ((kTable - smem_address % kTable) % kTable);
  const uint32_t tables_address = uint32_t(__cvta_generic_to_shared(tables));
  __half* xs = reinterpret_cast<__half*>(tables + size_t(rounds) * kTable);
  float* partial = reinterpret_cast<float*>(xs + padded);
  __half* cent = reinterpret_cast<__half*>(partial + size_t(rounds) * (kWarps + 1) * kRows);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(cp32) * 32u;  // in uint2
  PMPD_TIMELINE_BEGIN(timeline::StreamGemv, B, reinterpret_cast<uintptr_t>(m.tiled));
  dev::let_next_start();

  // This block's tasks: blockIdx.x + i gridDim.x for i < n. Grouped (fewer than 16 chunk
  // pairs): warp w takes chunk pair cp = w % CP and tasks group, group + groups, ... (group =
  // w / CP, groups = 16 / CP); else chunk pair w and every task. Slices: the blocks form
  // gridDim.x / Slices groups of Slices, block b taking slice b % Slices (chunk pairs
  // cp_base.. of it, cp_width of them: warp w the chunk pair cp_base + w) of its group's tasks.
  constexpr bool kSliced = Slices > 1;
  const int slice = kSliced ? int(blockIdx.x % Slices) : 0;
  const int block_of_tasks = kSliced ? int(blockIdx.x / Slices) : int(blockIdx.x);
  const int task_blocks = kSliced ? int(gridDim.x / Slices) : int(gridDim.x);
  const int cp_base = kSliced ? slice * cp32 / Slices : 0;
  const int cp_width = kSliced ? (slice + 1) * cp32 / Slices - cp_base : cp32;
  const int n = (tasks32 - 1 - block_of_tasks) / task_blocks + 1;
  auto task_of = [&](int i) { return block_of_tasks + i * task_blocks; };
  // Not Grouped: the first loads go through this cursor, the remnant of a walk over several
  // chunk pairs a warp (dropped: no faster); kept as it is, it keeps the measured PTX.
  const int per = kSliced ? int(warp < cp_width) : warp < cp32 ? (cp32 - 1 - warp) / kWarps + 1 : 0, items = n * per;
  struct Cursor {  // an item of this warp: task i (j = 0: one chunk pair)
    int i = 0, j = 0;
  };
  auto step = [&](Cursor& c) {
    if (++c.j == per) c.j = 0, ++c.i;
  };
  auto load = [&](const Cursor& c, uint2 (&dst)[2][B]) {
    load_item<B>(tiled, plane_words, cp32, task_of(c.i), cp_base + warp + kWarps * c.j, lane, dst);
  };
  const int groups = Grouped ? kWarps / cp32 : 1, group = Grouped ? warp / cp32 : 0,
            cp = Grouped ? warp % cp32 : cp_base + warp;
  uint2 ring[Ahead + 1][2][B];  // ring[0]: the item decoded; ring[1..Ahead]: the next ones, in flight
  Cursor next;  // the item loaded next
  if constexpr (Grouped) {
#pragma unroll
    for (int a = 0; a < Ahead; ++a)
      if (group + a * groups < n) load_item<B>(tiled, plane_words, cp32, task_of(group + a * groups), cp, lane, ring[a]);
  } else {
#pragma unroll
    for (int a = 0; a < Ahead; ++a)
      if (a < items) load(next, ring[a]), step(next);
  }
  copy_task_centroids<B, Mapped>(m, n, task_of, cent);
  prefetch_norm(in, int(m.cols));
  // The epilogue's first rows (warp w, lanes 0..15: task w's): a folded norm's weights now,
  // their residual after the wait; both in flight until the end.
  const bool writer = lane < kRows && warp < n;
  const float norm_w = writer ? norm_weight_of<Mapped>(m, out, task_of(warp), lane) : 0.f;
  dev::copy_async_wait_all();
  __syncthreads();
  PMPD_TIMELINE_MARK(1);
  TableBuild<B> share;
  for (int i = 0; i < n; ++i) {  // need none of x: built while the kernel before finishes
    share.load(cent + (i * kRows << B));
    share.store(tables + size_t(i) * kTable);
  }
  // Input fragments and no DNS outliers: each warp loads its x straight into registers after
  // the wait, no staging through shared memory and no block barrier before its items (the
  // barrier here publishes the tables, before the wait). Stop 29: Vicuna-7B 3 bits +1.3%; the
  // grouped kernel ran 0.3-1.4% slower with it (groups of warps reading the same x), so it
  // keeps staging x (sweeps/stop29-direct-x.md).
  const bool direct_x = !Grouped && in.prologue == GemvPrologue::Fragments && !m.nnz;
  publish_tables_and_wait(direct_x);
  const float y_old = writer ? residual_of<Mapped>(m, out, task_of(warp), lane) : 0.f;
  __shared__ float norm_scale;
  // x of this warp's chunk pair, at the indices chunk_mma reads (4 r of each half).
  uint4 xr[2][16];
  const bool has_x = Grouped || per;
  if (direct_x) {
    x_direct(in.fragments, cp, lane, has_x, xr);
    stage_norm_scale(in, int(m.cols), warp, lane, &norm_scale);  // read after the last barrier
  } else {
    if (in.prologue == GemvPrologue::Fragments) copy_fragments(in.fragments, int(padded), xs);
    else stage_fragments(in, int(m.cols), int(padded), xs);
    stage_norm_scale(in, int(m.cols), warp, lane, &norm_scale);
    dev::copy_async_wait_all();
    __syncthreads();
    x_staged(xs, cp, lane, has_x, xr);
  }
  PMPD_TIMELINE_MARK(4);

  // The stride is a constant 1 unless Grouped: with the grouped loop's runtime stride the
  // 16-chunk-pair kernel ran 16% slower on Vicuna-7B's 3-bit q|k|v and o (stop 23), so its
  // instantiation must keep this loop's constant step.
  // Grouped: warps past groups * CP (CP not a divisor of 16: 2560 columns, 10 chunk pairs) idle;
  // so do a slice's warps past its chunk pairs (a slice of 14 leaves two), whose loads would
  // be their neighbour slice's items, past the tiles at the last slice (stop 36).
  const int first = Grouped ? (group < groups ? group : n) : kSliced && !per ? n : 0, stride = Grouped ? groups : 1;
  // Item i from `cur`, the item Ahead on loaded into `next`.
  // Timeline marks 11..14 (stop 42): when the last two items of warp 0 and the last item of the
  // block's last busy warp arrive, and when that warp's loop ends: is the last decode round
  // one bunch decoded after every item is in, or spread as the items come?
  const int last_busy_warp = (kSliced ? cp_width : Grouped ? groups * cp32 : cp32 < kWarps ? cp32 : kWarps) - 1;
  (void)last_busy_warp;
  auto decode = [&](int i, const uint2 (&cur)[2][B], uint2 (&next)[2][B]) {
    if (i + Ahead * stride < n) load_item<B>(tiled, plane_words, cp32, task_of(i + Ahead * stride), cp, lane, next);
    if (i + stride >= n) {  // after the next item's loads: the marks hold their warp until `cur` is in
      PMPD_TIMELINE_MARK_ARRIVED(11, cur[0][0].x);
      PMPD_TIMELINE_MARK_ARRIVED_BY(12, cur[0][0].x, 32 * last_busy_warp);
    } else if (i + 2 * stride >= n) {
      PMPD_TIMELINE_MARK_ARRIVED(14, cur[0][0].x);
    }
    decode_item<B>(cur, xr, tables_address, tables, uint32_t(i) * kTable,
                   partial + size_t(i) * (kWarps + 1) * kRows, cp - cp_base, lane);
    if (i == first) PMPD_TIMELINE_MARK(5);
  };
  auto item = [&](int i) {
    decode(i, ring[0], ring[Ahead]);
#pragma unroll
    for (int a = 0; a < Ahead; ++a) copy_item<B>(ring[a + 1], ring[a]);
  };
  // One item in flight: two items a trip, their registers taking turns, so no step copies the
  // ring (stop 27's loop unrolled twice still moved 12 registers an item at 3 bits, the SASS
  // showed). Against that loop (stop 28, sweeps/stop28-pingpong-push-merge.md): Vicuna-7B 3
  // bits +1.5% / +1.4%, 2 bits +0.8%, Zephyr-3B 3 bits (the grouped kernel) +4.8%; but the
  // grouped kernel at 2 bits ran 1-3% slower end to end (Zephyr-3B, Phi-1.5, MobileLLaMA-1.4B),
  // so it keeps its plain loop (PTX-identical to stop 27's).
  if constexpr (Ahead == 1 && !(B == 2 && Grouped)) {
    int i = first;
    for (; i + stride < n; i += 2 * stride) {
      decode(i, ring[0], ring[1]);
      decode(i + stride, ring[1], ring[0]);
    }
    if (i < n) decode(i, ring[0], ring[1]);
  } else {
    for (int i = first; i < n; i += stride) item(i);
  }
  PMPD_TIMELINE_MARK(6);
  PMPD_TIMELINE_MARK_BY(13, 32 * last_busy_warp);
  if (m.nnz && slice == 0)  // warp w: row w's DNS outliers, for every task (slices: the first's sum)
    for (int i = 0; i < n; ++i) {
      const float s = outlier_correction<B, Mapped>(m, plane_words, cp32, task_of(i), warp, lane, xs);
      if (lane == 0) partial[(size_t(i) * (kWarps + 1) + kWarps) * kRows + warp] = s;
    }
  __syncthreads();  // every task's partial sums are in
  PMPD_TIMELINE_MARK(7);
  const int busy = kSliced ? cp_width : Grouped ? cp32 : cp32 < kWarps ? cp32 : kWarps;  // warps that wrote partial sums a task
  const float scale = in.sumsq_partials ? norm_scale : 1.f;
  write_block_rows<Mapped, Slices>(m, out, partial, n, task_of, slice, busy, scale, y_old, norm_w);
  PMPD_TIMELINE_MARK(8);
}

// ---- The rolling streaming GEMV (4 bits, 16 chunk pairs; stop 35) ----
// At 4 bits a task's pair tables take 64 KiB, so a block cannot hold all its tasks' tables as
// the streaming GEMV does, and the task loop pays a table build and a block barrier a task
// (~2 us a 16-row task of 32 KB, stop 34's timeline). Here the block keeps kRollSlots tasks'
// tables and each warp, as in the streaming GEMV, owns one chunk pair, keeps its x in
// registers and walks every task of its block, one item each. A slot is rebuilt for the task
// kRollSlots on once every warp is done with it, without a block barrier: after its item of
// task i each warp arrives at done[slot of i] and, after its item of task i + 1, waits for
// done[slot of i] (so a warp waits only on warps more than one task behind it), builds its
// share of task i + kRollSlots's tables there and arrives at ready[that slot], which the warps
// wait for before their items of that task, one task later. Against the task loop (stop 35,
// sweeps/stop35-roll.md): Vicuna-7B 4 bits +10.9% end to end, its projections 39% / 44% ->
// 42% / 49% of copy bandwidth.
constexpr int kRollSlots = 3;
// Each warp also asks L2 for its item two tasks on (prefetch_item_l2), beside loading the next
// into registers. Stop 44 (docs/data/h200/stop44, H200): Vicuna-7B 4 bits 514.9 / 515.5 / 515.4
// -> 528.8 / 527.4 / 528.6 tok/s (+2.6%; three on +1.7%); the same prefetch lost 0.9-2.7% in
// the 2..3-bit streaming GEMV and was mixed in the 5..8-bit rolling one (8 bits +1.0%, 6 bits
// -1.2%), so it is this kernel's alone.
constexpr int kRollL2Ahead = 2;
// The rolling kernels' table slots and their two barriers a slot (mbarriers, kWarps arrivals):
// task i uses slot i % S; a warp waits for `ready` before its item of a task whose slot was
// refilled, arrives at `done` after its item of a task whose slot will be, and after its item
// of task i refills its share of the slot task i - 1 left for task i - 1 + S.
template <int S>
struct SlotRing {
  uint64_t* done;
  uint64_t* ready;
  __device__ void init() const {
    if (threadIdx.x < S) {
      dev::barrier_init(done + threadIdx.x, kWarps);
      dev::barrier_init(ready + threadIdx.x, kWarps);
    }
  }
  __device__ void wait_ready(int i, int slot) const {
    const int use = i / S;
    if (use > 0) dev::barrier_wait(ready + slot, (use - 1) & 1);  // refilled for this task
  }
  __device__ void release(int i, int slot, int n, int lane) const {
    if (i + S < n) {  // this slot is refilled: done with it
      __syncwarp();
      if (lane == 0) dev::barrier_arrive(done + slot);
    }
  }
  // After task i's item: prepare(target) (what needs no slot), then, once every warp is done
  // with slot s, store(s, target) and arrive at ready; after(target) last.
  template <class Prepare, class Store, class After>
  __device__ void refill(int i, int n, int lane, Prepare&& prepare, Store&& store, After&& after) const {
    const int prev = i - 1, target = prev + S;
    if (prev >= 0 && target < n) {
      const int s = prev % S;
      prepare(target);
      dev::barrier_wait(done + s, (prev / S) & 1);
      store(s);
      __syncwarp();
      if (lane == 0) dev::barrier_arrive(ready + s);
      after(target);
    }
  }
};
template <int B, bool Mapped>
__global__ void __launch_bounds__(kThreads, 1)
    pair_lut_roll_kernel(DeviceBitPlanes m, GemvInput in, GemvOutput out, int rounds) {
  extern __shared__ __align__(16) uint8_t smem[];
  const Layout lay = layout_of(m);
  const int64_t padded = lay.chunk_pairs * 256;
  const int cp32 = int(lay.chunk_pairs), tasks32 = int(lay.row_blocks / 2);
  constexpr uint32_t kTable = uint32_t(table_bytes<B>());
  // kRollSlots tables (16-byte aligned: relative addresses at 4 bits), x, the partial sums
  // [rounds][kWarps + 1][16] and the centroids [rounds][16][2^B].
  uint8_t* tables = smem;
  const uint32_t tables_address = uint32_t(__cvta_generic_to_shared(tables));
  __half* xs = reinterpret_cast<__half*>(tables + kRollSlots * kTable);
  float* partial = reinterpret_cast<float*>(xs + padded);
  __half* cent = reinterpret_cast<__half*>(partial + size_t(rounds) * (kWarps + 1) * kRows);
  __shared__ uint64_t done[kRollSlots], ready[kRollSlots];
  const SlotRing<kRollSlots> slots{done, ready};
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(cp32) * 32u;  // in uint2
  PMPD_TIMELINE_BEGIN(timeline::StreamGemv, B, reinterpret_cast<uintptr_t>(m.tiled));
  dev::let_next_start();

  const int n = (tasks32 - 1 - int(blockIdx.x)) / int(gridDim.x) + 1;  // tasks blockIdx.x + i gridDim.x
  auto task_of = [&](int i) { return int(blockIdx.x) + i * int(gridDim.x); };
  const int cp = warp;  // 16 chunk pairs: one a warp
  uint2 ring[2][2][B];  // the item decoded and the next one, in flight, taking turns
  load_item<B>(tiled, plane_words, cp32, task_of(0), cp, lane, ring[0]);
  copy_task_centroids<B, Mapped>(m, n, task_of, cent);
  slots.init();
  prefetch_norm(in, int(m.cols));
  const bool writer = lane < kRows && warp < n;
  const float norm_w = writer ? norm_weight_of<Mapped>(m, out, task_of(warp), lane) : 0.f;
  dev::copy_async_wait_all();
  __syncthreads();  // the centroids and the barriers
  PMPD_TIMELINE_MARK(1);
  TableBuild<B> share;
  for (int i = 0; i < min(n, kRollSlots); ++i) {  // the first slots' tables need none of x
    share.load(cent + (i * kRows << B));
    share.store(tables + size_t(i) * kTable);
  }
  const bool direct_x = in.prologue == GemvPrologue::Fragments;  // (the host sends no DNS outliers here)
  publish_tables_and_wait(direct_x);
  const float y_old = writer ? residual_of<Mapped>(m, out, task_of(warp), lane) : 0.f;
  __shared__ float norm_scale;
  uint4 xr[2][16];  // x of this warp's chunk pair, at the indices chunk_mma reads (4 r of each half)
  if (direct_x) {
    x_direct(in.fragments, cp, lane, true, xr);
    stage_norm_scale(in, int(m.cols), warp, lane, &norm_scale);  // read after the last barrier
  } else {
    stage_fragments(in, int(m.cols), int(padded), xs);
    stage_norm_scale(in, int(m.cols), warp, lane, &norm_scale);
    __syncthreads();
    x_staged(xs, cp, lane, true, xr);
  }
  PMPD_TIMELINE_MARK(4);

  // Task i: its item from `cur`, the next task's loaded into `next`; two tasks a trip, the
  // registers taking turns (indexed by a variable, the ring would live in local memory).
  auto task_item = [&](int i, const uint2 (&cur)[2][B], uint2 (&next)[2][B]) {
    const int slot = i % kRollSlots;
    slots.wait_ready(i, slot);
    if (i + 1 < n) load_item<B>(tiled, plane_words, cp32, task_of(i + 1), cp, lane, next);
    if (i + kRollL2Ahead < n) prefetch_item_l2<B>(tiled, plane_words, cp32, task_of(i + kRollL2Ahead), cp, lane);
    decode_item<B>(cur, xr, tables_address, tables, uint32_t(slot) * kTable,
                   partial + size_t(i) * (kWarps + 1) * kRows, cp, lane);
    if (i == 0) PMPD_TIMELINE_MARK(5);
    slots.release(i, slot, n, lane);
    slots.refill(
        i, n, lane, [&](int target) { share.load(cent + (target * kRows << B)); },  // centroids, not the slot
        [&](int s) { share.store(tables + size_t(s) * kTable); }, [](int) {});
  };
  int i = 0;
  for (; i + 1 < n; i += 2) {
    task_item(i, ring[0], ring[1]);
    task_item(i + 1, ring[1], ring[0]);
  }
  if (i < n) task_item(i, ring[0], ring[1]);
  PMPD_TIMELINE_MARK(6);
  __syncthreads();  // every task's partial sums are in
  PMPD_TIMELINE_MARK(7);
  const float scale = in.sumsq_partials ? norm_scale : 1.f;
  write_block_rows<Mapped, 1>(m, out, partial, n, task_of, 0, kWarps, scale, y_old, norm_w);
  PMPD_TIMELINE_MARK(8);
}

// ---- The rolling streaming GEMV at 5..8 bits (stop 39) ----
// The task loop serves 5..8 bits at 39-52% of copy bandwidth on Vicuna-7B's projections (a
// table fill and a block barrier a 16-row task). This is the 4-bit rolling kernel's walk with
// the wide decoder: each warp owns one chunk pair and walks every task of its block, one item
// each, kWideRollSlots tasks' tables resident and a slot refilled for the task kWideRollSlots
// on once every warp is done with it (the same done/ready barriers a slot). A wide table is a
// buffer of a 64 KiB region (tile_decode.cuh, kWideRegion), so the slots are the two buffers of
// two regions. Its centroids come from the device tables into registers (WideTableFill), the
// loads issued a refill ahead. x stays staged in shared memory: an 8-bit item takes 64
// registers a warp's lane, and x in registers would leave too few for two items in flight.
constexpr int kWideRollSlots = 4;
template <int B>
__device__ __forceinline__ void decode_item_wide(const uint2 (&item)[2][B], const uint4* xsv, uint32_t region, int buf,
                                                 float* part, int cp, int lane) {
  uint32_t base[2];
  base[0] = region | uint32_t(buf * 128 + 4 * lane), base[1] = base[0] | 2u;
  float acc[2][4] = {};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint32_t p[2][B];
    item_half<B>(item, h, p);
    chunk_mma_wide<B>(p, xsv + (2 * cp + h) * 16 + (lane & 3), base, acc);
  }
  write_warp_partials(part, cp, lane, acc);
}
template <int B, bool Mapped>
__global__ void __launch_bounds__(kThreads, 1)
    wide_roll_kernel(DeviceBitPlanes m, GemvInput in, GemvOutput out, int rounds) {
  static_assert(is_wide<B>(), "5..8 bits");
  constexpr int S = kWideRollSlots;
  static_assert(S % 2 == 0, "the first fills go in pairs; their last load is the first refill's, task S");
  extern __shared__ __align__(16) uint8_t smem[];
  const Layout lay = layout_of(m);
  const int64_t padded = lay.chunk_pairs * 256;
  const int cp32 = int(lay.chunk_pairs), tasks32 = int(lay.row_blocks / 2);
  // x and the partial sums [rounds][kWarps + 1][16] first, then two table regions from the
  // next 64 KiB boundary (the host asks for room for the worst padding).
  __half* xs = reinterpret_cast<__half*>(smem);
  float* partial = reinterpret_cast<float*>(xs + padded);
  const uint32_t rest_end = uint32_t(__cvta_generic_to_shared(partial + size_t(rounds) * (kWarps + 1) * kRows));
  const uint32_t tables_address = (rest_end + kWideRegion - 1) & ~(kWideRegion - 1);
  auto region_of = [&](int slot) { return tables_address + uint32_t(slot >> 1) * kWideRegion; };
  __shared__ uint64_t done[S], ready[S];
  const SlotRing<S> slots{done, ready};
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(cp32) * 32u;  // in uint2
  PMPD_TIMELINE_BEGIN(timeline::StreamGemv, B, reinterpret_cast<uintptr_t>(m.tiled));
  dev::let_next_start();

  const int n = (tasks32 - 1 - int(blockIdx.x)) / int(gridDim.x) + 1;  // tasks blockIdx.x + i gridDim.x
  auto task_of = [&](int i) { return int(blockIdx.x) + i * int(gridDim.x); };
  const int cp = warp;  // 16 chunk pairs: one a warp
  uint2 ring[2][2][B];  // the item decoded and the next one, in flight, taking turns
  load_item<B>(tiled, plane_words, cp32, task_of(0), cp, lane, ring[0]);
  slots.init();
  prefetch_norm(in, int(m.cols));
  const bool writer = lane < kRows && warp < n;
  const float norm_w = writer ? norm_weight_of<Mapped>(m, out, task_of(warp), lane) : 0.f;
  // The first slots' tables need none of x: filled while the kernel before finishes, two
  // tasks' centroid loads in flight at a time. fill then holds the next refill's centroids.
  WideTableFill<B, Mapped> fill, other;
  fill.init(), other.init();
  fill.load(m, task_of(0));
  for (int i = 0; i < min(n, S); i += 2) {
    if (i + 1 < min(n, S)) other.load(m, task_of(i + 1));
    fill.store(region_of(i), i & 1);
    if (i + 2 < n) fill.load(m, task_of(i + 2));  // the next pair's first, or the first refill
    if (i + 1 < min(n, S)) other.store(region_of(i + 1), (i + 1) & 1);
  }
  __syncthreads();  // the barriers and the first tables
  PMPD_TIMELINE_MARK(1);
  PMPD_TIMELINE_MARK(2);
  dev::wait_for_producer();
  PMPD_TIMELINE_MARK(3);
  const float y_old = writer ? residual_of<Mapped>(m, out, task_of(warp), lane) : 0.f;
  __shared__ float norm_scale;
  if (in.prologue == GemvPrologue::Fragments) copy_fragments(in.fragments, int(padded), xs);
  else stage_fragments(in, int(m.cols), int(padded), xs);
  stage_norm_scale(in, int(m.cols), warp, lane, &norm_scale);
  dev::copy_async_wait_all();
  __syncthreads();
  const uint4* xsv = reinterpret_cast<const uint4*>(xs);
  PMPD_TIMELINE_MARK(4);

  // Task i: its item from `cur`, the next task's loaded into `next` (two tasks a trip, the
  // registers taking turns); then this warp's share of the refill of the slot task i - 1 left.
  auto task_item = [&](int i, const uint2 (&cur)[2][B], uint2 (&next)[2][B]) {
    const int slot = i % S;
    slots.wait_ready(i, slot);
    if (i + 1 < n) load_item<B>(tiled, plane_words, cp32, task_of(i + 1), cp, lane, next);
    decode_item_wide<B>(cur, xsv, region_of(slot), slot & 1, partial + size_t(i) * (kWarps + 1) * kRows, cp, lane);
    if (i == 0) PMPD_TIMELINE_MARK(5);
    slots.release(i, slot, n, lane);
    slots.refill(
        i, n, lane, [](int) {}, [&](int s) { fill.store(region_of(s), s & 1); },
        [&](int target) {
          if (target + 1 < n) fill.load(m, task_of(target + 1));  // in flight until the next refill
        });
  };
  int i = 0;
  for (; i + 1 < n; i += 2) {
    task_item(i, ring[0], ring[1]);
    task_item(i + 1, ring[1], ring[0]);
  }
  if (i < n) task_item(i, ring[0], ring[1]);
  PMPD_TIMELINE_MARK(6);
  __syncthreads();  // every task's partial sums are in
  PMPD_TIMELINE_MARK(7);
  const float scale = in.sumsq_partials ? norm_scale : 1.f;
  write_block_rows<Mapped, 1>(m, out, partial, n, task_of, 0, kWarps, scale, y_old, norm_w);
  PMPD_TIMELINE_MARK(8);
}

// 2..3-bit matrices on the task loop (the down projections: more than 4096 columns) run as one
// block an SM with two items in flight a warp, instead of two blocks with one, where that costs
// no SMs (stop 25, sweeps/stop25-one-block-down.md, end to end): where every block has one task
// (Phi-1.5 and MobileLLaMA-1.4B, 128 tasks: 3 bits +6.2% / +4.2%, 2 bits +4.3% / +2.4%), and at 3
// bits also where blocks of two tasks still fill nine SMs in ten (Vicuna-7B, 256 tasks: +1.7%;
// at 2 bits -1.1%, so not there; Zephyr-3B's 160 tasks would fill 80 SMs: -0.8% at 3 bits).
// PMPD_CUDA_GEMV_ONE_BLOCK_COLS=N instead puts every such matrix of at most N columns on one
// block (0: none); -1 is the rule.
int one_block_cols = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_ONE_BLOCK_COLS");
  return e ? std::max(0, std::atoi(e)) : -1;
}();
template <int B>
bool one_block_pays(const DeviceBitPlanes& m) {
  const int64_t tasks = layout_of(m).row_blocks / 2, sms = multiprocessor_count();
  if (tasks <= sms) return true;
  const int64_t rounds = (tasks + sms - 1) / sms, blocks = (tasks + rounds - 1) / rounds;
  return B == 3 && 10 * blocks >= 9 * sms;
}

// Shared memory a block needs: tables (aligned), x, partial sums, the staged centroids.
template <int B>
size_t smem_bytes(const DeviceBitPlanes& m) {
  const Layout lay = layout_of(m);
  const size_t align_pad = table_align<B>() > 16 ? table_align<B>() : 0;
  const int rounds_max = int((lay.row_blocks / 2 + multiprocessor_count() - 1) / multiprocessor_count());
  const size_t centroids = is_wide<B>() ? 0 : (size_t(rounds_max * kRows) << B) * 2;
  return align_pad + table_region_bytes<B>() + size_t(lay.chunk_pairs) * 512 + sizeof(float) * 2 * (kWarps + 1) * kRows +
         centroids;
}
constexpr size_t kSmemMax = 227 * 1024 - 256;  // the opt-in limit, less room for static shared memory (reductions)
std::atomic<PairLutKernel> last_kernel{PairLutKernel::None};  // pair_lut_last_kernel

template <int B, int Blocks, bool Mapped>
bool launch(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  const Layout lay = layout_of(m);
  const int64_t tasks = lay.row_blocks / 2;
  const int rounds_max = int((tasks + multiprocessor_count() - 1) / multiprocessor_count());
  const size_t smem = smem_bytes<B>(m);
  if (smem > kSmemMax) return false;  // x too long for shared memory: the bit-plane GEMV serves it
  // Persistent blocks: as many as fit at once (each stages x once), looping over row tasks.
  const int per_sm = blocks_per_sm<pair_lut_gemv_kernel<B, Blocks, Mapped>>(kThreads, smem);
  const int64_t resident = std::max(1, per_sm) * int64_t(multiprocessor_count());
  const int64_t rounds = (tasks + resident - 1) / resident;
  const int64_t blocks = (tasks + rounds - 1) / rounds;
  PMPD_CUDA_REQUIRE(rounds <= rounds_max, "pair-table GEMV: more tasks a block than staged");
  PMPD_CUDA_REQUIRE(tiled_words(m, B) < (int64_t(1) << 32), "pair-table GEMV: a matrix beyond 32-bit tile indices");
  launch_chained(pair_lut_gemv_kernel<B, Blocks, Mapped>, dim3(unsigned(blocks)), dim3(kThreads), smem, s, m, in, out,
                 int(rounds));
  last_kernel = PairLutKernel::TaskLoop;
  return true;
}

// The streaming GEMV serves 2..3 bits on matrices of up to 16 chunk pairs (4096 columns) whose
// tasks' tables fit shared memory at one block an SM.
// Stop 22 kept 3 bits to blocks of 8 tasks or more (Vicuna-7B's q|k|v, 6 tasks a block, and o,
// 2, ran slower); in stop 23's form (the DNS outliers after the items, one item in flight) every
// 4096-column matrix gains at both widths. PMPD_CUDA_GEMV_STREAM=0: never, for comparisons;
// PMPD_CUDA_GEMV_STREAM_ROUNDS3=N: 3 bits only where a block has at least N tasks (default 1);
// PMPD_CUDA_GEMV_STREAM_SHARED=0: only on 16 chunk pairs (no warp groups).
bool stream_enabled = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_STREAM");
  return !(e && std::atoi(e) == 0);
}();
bool stream_shared = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_STREAM_SHARED");
  return !(e && std::atoi(e) == 0);
}();
// Items in flight a warp, 1 or 2 (PMPD_CUDA_GEMV_STREAM_AHEAD). Stop 23, Vicuna-7B, one call:
// 3 bits 602.5 tok/s with one, 587.8 with two (an earlier form of the loop, the DNS outliers
// inside it, ran 558.4 with one and 590.8 with two); at 2 bits one is faster in every form.
int stream_ahead = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_STREAM_AHEAD");
  return e ? std::clamp(std::atoi(e), 1, 2) : 1;
}();
// Waves of streaming blocks where one block an SM cannot hold every task's tables
// (PMPD_CUDA_GEMV_STREAM_WAVES=0: the task loop there, as before stop 48); stream_max_rounds
// (tests) caps a block's tasks, so that small matrices run in waves too.
bool stream_waves = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_STREAM_WAVES");
  return !(e && std::atoi(e) == 0);
}();
int stream_max_rounds = 0;
int stream_rounds_3bit = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_STREAM_ROUNDS3");
  return e ? std::max(1, std::atoi(e)) : 1;
}();
// Shared memory of a streaming block beside its tables: x and the partial sums of `rounds`
// tasks, then (2..4 bits) their staged centroids (the streaming and rolling kernels' layout).
inline size_t x_and_partials_bytes(const DeviceBitPlanes& m, int rounds) {
  return size_t(layout_of(m).chunk_pairs) * 512 + sizeof(float) * size_t(rounds) * (kWarps + 1) * kRows;
}
template <int B>
size_t stream_rest_bytes(const DeviceBitPlanes& m, int rounds) {
  return x_and_partials_bytes(m, rounds) + (size_t(rounds * kRows) << B) * 2;
}
// The streaming kernel's: every task's tables, aligned to their size (one table of padding).
template <int B>
size_t stream_smem_bytes(const DeviceBitPlanes& m, int rounds) {
  return table_bytes<B>() + size_t(rounds) * table_bytes<B>() + stream_rest_bytes<B>(m, rounds);
}
template <auto Kernel>
void launch_stream_kernel(dim3 grid, size_t smem, cudaStream_t s, const DeviceBitPlanes& m, const GemvInput& in,
                          const GemvOutput& out, int rounds) {
  allow_dynamic_smem<Kernel>(smem);
  launch_chained(Kernel, grid, dim3(kThreads), smem, s, m, in, out, rounds);
}
// Column slices (stop 33): 2..3-bit matrices of 17..64 chunk pairs, plain tiles and output, where
// the output brings the scratch: ceil(CP / 16) slices, SMs / slices blocks a slice (at most one
// a task), each with every task's tables of its share. PMPD_CUDA_GEMV_SLICES (set_pair_lut_slices):
// 0 never (the task loop), 2 wherever the tables fit, 1 (the default) at 3 bits where a block
// has three tasks or more. Measured against the task loop in one call each
// (sweeps/stop33-column-slices.md): 3 bits Vicuna-7B (6 tasks a block) +1.1..1.4%, Zephyr-3B (3)
// +0.7..1.2%; Phi-1.5 and MobileLLaMA-1.4B (2 tasks a block, where the task loop has one) -1.0%
// and -4.0%, Vicuna-7B at 2 bits -0.8..-1.5%.
int slices_mode = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_SLICES");
  return e ? std::atoi(e) : 1;
}();
template <int B>
bool launch_sliced(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  const Layout lay = layout_of(m);
  const int64_t tasks = lay.row_blocks / 2;
  const int slices = int((lay.chunk_pairs + kWarps - 1) / kWarps);
  if (!stream_enabled || !slices_mode || tasks < 1 || slices < 2 || slices > 4 || !out.slice_partials ||
      !out.slice_counts || tasks > out.slice_tasks)
    return false;
  const int64_t task_blocks = std::min<int64_t>(tasks, std::max(1, multiprocessor_count() / slices));
  const int rounds = int((tasks + task_blocks - 1) / task_blocks);
  if (B == 3 && rounds < stream_rounds_3bit) return false;
  if (slices_mode == 1 && (B != 3 || rounds < 3)) return false;
  const size_t smem = stream_smem_bytes<B>(m, rounds);
  if (smem > kSmemMax) return false;
  PMPD_CUDA_REQUIRE(tiled_words(m, B) < (int64_t(1) << 32), "pair-table GEMV: a matrix beyond 32-bit tile indices");
  const dim3 grid{unsigned(task_blocks * slices)};
  if (slices == 2) launch_stream_kernel<pair_lut_stream_kernel<B, false, 1, false, 2>>(grid, smem, s, m, in, out, rounds);
  else if (slices == 3) launch_stream_kernel<pair_lut_stream_kernel<B, false, 1, false, 3>>(grid, smem, s, m, in, out, rounds);
  else launch_stream_kernel<pair_lut_stream_kernel<B, false, 1, false, 4>>(grid, smem, s, m, in, out, rounds);
  last_kernel = PairLutKernel::ColumnSlices;
  return true;
}
template <int B, bool Mapped>
bool launch_stream(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  const Layout lay = layout_of(m);
  const int64_t tasks = lay.row_blocks / 2, cp = lay.chunk_pairs;
  const bool grouped = cp < kWarps;
  if constexpr (!Mapped)
    if (cp > kWarps) return launch_sliced<B>(m, in, out, s);
  if (!stream_enabled || tasks < 1 || cp > kWarps || (grouped && !stream_shared)) return false;
  const int64_t sms = multiprocessor_count();
  int64_t blocks = std::min<int64_t>(tasks, sms);
  int rounds = int((tasks + blocks - 1) / blocks);
  if (B == 3 && rounds < stream_rounds_3bit) return false;
  // Waves (stop 48): where a block's tasks' tables do not all fit (an LM head: Vicuna-7B's
  // 2000 tasks at 3 bits, 16 KiB of tables each), whole waves of one block an SM, each block
  // with as many tasks as fit; the kernel takes any grid (block b: tasks b, b + grid, ...).
  int fit = rounds;
  while (fit > 0 && (stream_smem_bytes<B>(m, fit) > kSmemMax || (stream_max_rounds > 0 && fit > stream_max_rounds))) --fit;
  if (fit < rounds) {
    if (!stream_waves || fit == 0) return false;
    const int64_t waves = (tasks + sms * fit - 1) / (sms * fit);
    blocks = std::min<int64_t>(tasks, waves * sms);
    rounds = int((tasks + blocks - 1) / blocks);
  }
  const size_t smem = stream_smem_bytes<B>(m, rounds);
  if (smem > kSmemMax) return false;
  PMPD_CUDA_REQUIRE(tiled_words(m, B) < (int64_t(1) << 32), "pair-table GEMV: a matrix beyond 32-bit tile indices");
  const dim3 grid{unsigned(blocks)};
  if (stream_ahead == 2 && grouped) launch_stream_kernel<pair_lut_stream_kernel<B, Mapped, 2, true>>(grid, smem, s, m, in, out, rounds);
  else if (stream_ahead == 2) launch_stream_kernel<pair_lut_stream_kernel<B, Mapped, 2, false>>(grid, smem, s, m, in, out, rounds);
  else if (grouped) launch_stream_kernel<pair_lut_stream_kernel<B, Mapped, 1, true>>(grid, smem, s, m, in, out, rounds);
  else launch_stream_kernel<pair_lut_stream_kernel<B, Mapped, 1, false>>(grid, smem, s, m, in, out, rounds);
  last_kernel = PairLutKernel::Streaming;
  return true;
}

// The rolling streaming GEMV (stop 35): 4-bit matrices of 16 chunk pairs without DNS
// outliers, where the tables of kRollSlots tasks fit beside the block's partial sums and
// centroids. PMPD_CUDA_GEMV_ROLL=0 (set_pair_lut_roll) leaves them on the task loop. Wider
// matrices (the down projections) stay there: over column slices it ran 1-5% slower end to
// end on the four shapes (sweeps/stop35-roll.md).
bool roll_enabled = [] {
  const char* e = std::getenv("PMPD_CUDA_GEMV_ROLL");
  return !(e && std::atoi(e) == 0);
}();
int roll_max_blocks = 0;  // tests: fewer blocks, so that slots are rebuilt
// The wide rolling GEMV (stop 39) serves 5, 6 and 8 bits on the same matrices, where x, the
// partial sums and two 64 KiB table regions (with the worst padding to their alignment) fit.
// Against the task loop, Vicuna-7B end to end (sweeps/stop39-wide-roll.md): 8 bits +2.2%, 6
// bits +1.9% (two pairs each), 5 bits +0.2%; 7 bits -0.9% (one pair), so 7 bits stays on the
// task loop.
template <int B>
constexpr bool roll_pays() {
  return B == 4 || B == 5 || B == 6 || B == 8;
}
template <int B>
size_t roll_smem_bytes(const DeviceBitPlanes& m, int rounds) {
  if constexpr (is_wide<B>())
    return x_and_partials_bytes(m, rounds) + 3 * size_t(kWideRegion);
  else
    return kRollSlots * table_bytes<B>() + stream_rest_bytes<B>(m, rounds);
}
template <int B, bool Mapped>
bool launch_roll(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  const Layout lay = layout_of(m);
  const int64_t tasks = lay.row_blocks / 2;
  if (!roll_enabled || !stream_enabled || m.nnz || lay.chunk_pairs != kWarps || tasks < 1) return false;
  const int64_t blocks = std::min<int64_t>(tasks, roll_max_blocks > 0 ? roll_max_blocks : multiprocessor_count());
  const int rounds = int((tasks + blocks - 1) / blocks);
  const size_t smem = roll_smem_bytes<B>(m, rounds);
  if (smem > kSmemMax) return false;
  PMPD_CUDA_REQUIRE(tiled_words(m, B) < (int64_t(1) << 32), "pair-table GEMV: a matrix beyond 32-bit tile indices");
  if constexpr (is_wide<B>())
    launch_stream_kernel<wide_roll_kernel<B, Mapped>>(dim3{unsigned(blocks)}, smem, s, m, in, out, rounds);
  else
    launch_stream_kernel<pair_lut_roll_kernel<B, Mapped>>(dim3{unsigned(blocks)}, smem, s, m, in, out, rounds);
  last_kernel = PairLutKernel::Rolling;
  return true;
}

template <int B>
bool launch(const DeviceBitPlanes& m, const GemvInput& in, const GemvOutput& out, cudaStream_t s) {
  const bool mapped = m.tiles_interleave || out.fragments;
  if constexpr (B <= 3)
    if (mapped ? launch_stream<B, true>(m, in, out, s) : launch_stream<B, false>(m, in, out, s)) return true;
  if constexpr (roll_pays<B>())
    if (mapped ? launch_roll<B, true>(m, in, out, s) : launch_roll<B, false>(m, in, out, s)) return true;
  if (mapped) return launch<B, default_blocks<B>(), true>(m, in, out, s);
  if constexpr (B <= 3)
    if (one_block_cols < 0 ? one_block_pays<B>(m) : m.cols <= one_block_cols) return launch<B, 1, false>(m, in, out, s);
  return launch<B, default_blocks<B>(), false>(m, in, out, s);
}

// One thread per tiled word: gathers its 32 bits from the on-disk planes.
__global__ void tile_kernel(DeviceBitPlanes m, int planes, uint32_t* __restrict__ out) {
  const Layout lay = layout_of(m);
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx < int64_t(planes) * lay.row_blocks * lay.chunk_pairs * 64) out[idx] = tile_word(m, idx);
}

// The dequantization stages each warp's half chunk (16 rows x 128 columns) in shared memory
// at this row pitch (halves): the A registers' stores (rows g, columns 2t) hit 32 banks.
constexpr int kStagePitch = 136;

// The dequantization's tables (and, at 2..4 bits, the task's centroids behind them).
template <int B>
__host__ __device__ constexpr size_t tile_dequant_table_bytes() {
  if constexpr (is_wide<B>()) return kWideRegion;
  else return table_bytes<B>() + (size_t(kRows) << B) * 2;
}

// W_b as f16 rows from the tiles, decoded as the GEMV decodes them: block t takes task t's
// 16 rows, builds their tables in shared memory (pair tables at 2..4 bits, single-weight
// tables at 5..8) and its warps walk the chunk pairs, storing each A register (an f16 pair
// of a row) where the GEMV would multiply it. A thread a word, looking every weight up in
// global memory (the kernel before this one), was ~35% slower than the planes' dequantization.
template <int B>
__global__ void __launch_bounds__(kThreads, is_wide<B>() ? 1 : 2) tile_dequant_kernel(DeviceBitPlanes m, __half* __restrict__ out) {
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr bool Wide = is_wide<B>();
  const Layout lay = layout_of(m);
  const int task = int(blockIdx.x), warp = threadIdx.x / 32, lane = threadIdx.x % 32, cp32 = int(lay.chunk_pairs);
  const uint32_t smem_address = uint32_t(__cvta_generic_to_shared(smem));
  const uint32_t align = table_align<B>();
  uint8_t* tables = smem + ((align - smem_address % align) % align);
  const uint32_t tables_address = uint32_t(__cvta_generic_to_shared(tables));
  TableAddress<Wide ? 4 : B> ta;
  uint32_t wide_base[2];
  if constexpr (Wide) {
    WideTableFill<B, true> fill;
    fill.init();
    fill.load(m, task);
    fill.store(tables_address, 0);
    wide_base[0] = tables_address | uint32_t(4 * lane), wide_base[1] = wide_base[0] | 2u;
  } else {
    __half* cent = reinterpret_cast<__half*>(tables + table_bytes<B>());  // the task's [16][2^B] centroids
    const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
    for (int i = threadIdx.x; i < kRows << B; i += blockDim.x) {
      const int row = task_row<true>(m, task, i >> B);
      cent[i] = row >= 0 ? table[(int64_t(row) << B) + (i & ((1 << B) - 1))] : __float2half(0.f);
    }
    __syncthreads();
    TableShare<B> share;
    share.load(cent);
    share.store(tables);
    ta.set(tables_address, tables, lane);
  }
  __syncthreads();
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(cp32) * 32u;  // in uint2
  // Each warp's half chunk passes through shared memory (kStagePitch), so that its stores to
  // the output are whole 256-byte row runs rather than 16-byte pieces of 8 rows.
  __half* stage = reinterpret_cast<__half*>(tables + tile_dequant_table_bytes<B>()) + warp * kRows * kStagePitch;
  const int64_t cols = m.cols;
  const bool vec = cols % 8 == 0;  // 16-byte stores stay aligned
  for (int cp = warp; cp < cp32; cp += kWarps) {
    uint2 w[2][B];
    load_item<B>(tiled, plane_words, cp32, task, cp, lane, w);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t p[2][B];
      item_half<B>(w, h, p);
      // Byte b = i + hh of register r: columns 16 (2 r + i / 2) + 8 hh + 2 (lane % 4) of the half chunk.
      auto use = [&](int r, auto&& operand) {
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const int col = 16 * (2 * r + b / 2) + 8 * (b % 2) + 2 * (lane % 4);
#pragma unroll
          for (int q = 0; q < 2; ++q)
            *reinterpret_cast<uint32_t*>(stage + (8 * q + lane / 4) * kStagePitch + col) = operand(q, b);
        }
      };
      if constexpr (Wide) wide_operands<B>(p, wide_base, use);
      else pair_operands<B>(p, ta, use);
      __syncwarp();
      // Out: 16 lanes a row, 8 columns (16 bytes) a lane.
      const int64_t col0 = int64_t(2 * cp + h) * 128 + 8 * (lane % 16);
#pragma unroll
      for (int j = 0; j < kRows / 2; ++j) {
        const int i = 2 * j + lane / 16, r = task_row<true>(m, task, i);
        const __half* src = stage + i * kStagePitch + 8 * (lane % 16);
        if (r < 0 || col0 >= cols) continue;
        __half* dst = out + int64_t(r) * cols + col0;
        if (vec) *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        else
          for (int c = 0; c < 8 && col0 + c < cols; ++c) dst[c] = src[c];
      }
      __syncwarp();  // copied out before the next half overwrites the stage
    }
  }
}

template <int B>
size_t tile_dequant_smem() {
  const size_t align_pad = table_align<B>() > 16 ? table_align<B>() : 0;
  return align_pad + tile_dequant_table_bytes<B>() + size_t(kWarps) * kRows * kStagePitch * sizeof(__half);
}

}  // namespace

int64_t tiled_words(const DeviceBitPlanes& m, int planes) {
  const Layout lay = layout_of(m);
  return int64_t(planes) * lay.row_blocks * lay.chunk_pairs * 64;
}

void tile_bitplanes(const DeviceBitPlanes& m, int planes, uint32_t* out, void* stream) {
  PMPD_CUDA_REQUIRE(planes >= 1 && planes <= kTiledPlanesMax && planes <= m.bits_max, "tile_bitplanes: bad plane count");
  const int64_t n = tiled_words(m, planes);
  tile_kernel<<<unsigned((n + 255) / 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(m, planes, out);
  PMPD_CUDA_CHECK(cudaGetLastError());
}

void tiled_dequant_f16(const DeviceBitPlanes& m, int bits, uint16_t* out, void* stream) {
  PMPD_CUDA_REQUIRE(m.tiled && bits >= 2 && bits <= m.tiled_planes, "dequantization: no planes and no tiles at that width");
  PMPD_CUDA_REQUIRE(tiled_words(m, bits) < (int64_t(1) << 32), "dequantization: a matrix beyond 32-bit tile indices");
  const Layout lay = layout_of(m);
  __half* o = reinterpret_cast<__half*>(out);
  with_width<2>(bits, [&](auto B) {
    const size_t smem = tile_dequant_smem<B()>();
    allow_dynamic_smem<tile_dequant_kernel<B()>>(smem);
    tile_dequant_kernel<B()><<<unsigned(lay.row_blocks / 2), kThreads, smem, static_cast<cudaStream_t>(stream)>>>(m, o);
  });
  PMPD_CUDA_CHECK(cudaGetLastError());
}

std::vector<uint32_t> tile_bitplanes_host(const DeviceBitPlanes& m, int planes) {
  std::vector<uint32_t> out(size_t(tiled_words(m, planes)));
  for (size_t i = 0; i < out.size(); ++i) out[i] = tile_word(m, int64_t(i));
  return out;
}

int tiled_code_host(const DeviceBitPlanes& m, const uint32_t* tiled, int bits, int64_t r, int64_t j) {
  return tiled_code(m, tiled, bits, r, j);
}

std::vector<int> decoded_codes_host(const uint32_t* words, int bits) {
  std::vector<int> codes(32);
  with_width<2>(bits, [&](auto Bc) {
    constexpr int B = Bc();
    uint32_t p[B];
    for (int k = 0; k < B; ++k) p[k] = words[k];
    for (int r = 0; r < 4; ++r) {
      uint32_t w1 = 0, w2 = 0;
      if constexpr (B <= 4) w1 = pair_indices<B>(p, r, 0);
      else wide_indices<B>(p, r, w1, w2);
      for (int i = 0; i < 4; ++i) {
        const int e1 = int((w1 >> (8 * i)) & 0xffu), e2 = int((w2 >> (8 * i)) & 0xffu);
        // A pair table's entry e holds the centroids of codes even_bits(e) and odd_bits(e)
        // (TableShare); a wide table's entry e that of wide_code(e).
        codes[size_t(2 * (4 * r + i))] = B <= 4 ? even_bits(e1) : wide_code(e1, B);
        codes[size_t(2 * (4 * r + i) + 1)] = B <= 4 ? odd_bits(e1) : wide_code(e2, B);
      }
    }
  });
  return codes;
}

void set_pair_lut_one_block_cols(int cols) { one_block_cols = std::max(-1, cols); }

void set_pair_lut_stream(bool on, bool shared) { stream_enabled = on, stream_shared = shared; }

void set_pair_lut_stream_rounds_3bit(int rounds) { stream_rounds_3bit = std::max(1, rounds); }
int set_pair_lut_stream_waves(bool on, int max_rounds) {
  stream_waves = on;
  return std::exchange(stream_max_rounds, std::max(0, max_rounds));
}

int set_pair_lut_stream_ahead(int items) { return std::exchange(stream_ahead, std::clamp(items, 1, 2)); }

int set_pair_lut_slices(int mode) { return std::exchange(slices_mode, std::clamp(mode, 0, 2)); }

void set_pair_lut_roll(bool on, int max_blocks) { roll_enabled = on, roll_max_blocks = std::max(0, max_blocks); }

PairLutKernel pair_lut_last_kernel() { return last_kernel.load(std::memory_order_relaxed); }

int64_t slice_partial_floats(int64_t rows) { return (rows + 15) / 16 * 4 * kRows; }

int64_t fragment_halves(int64_t cols) { return (cols + 255) / 256 * 256; }

int64_t fragment_slot(int64_t col) { return x_slot(col); }

bool pair_lut_serves(const DeviceBitPlanes& m, int bits) {
  if (!m.tiled || bits < 2 || bits > m.tiled_planes) return false;
  return with_width<2>(bits, [&](auto B) { return smem_bytes<B()>(m); }) <= kSmemMax;
}

bool pair_lut_gemv(const DeviceBitPlanes& m, int bits, const GemvInput& in, const GemvOutput& out, void* stream) {
  if (!m.tiled || bits < 2 || bits > m.tiled_planes) return false;
  PMPD_CUDA_REQUIRE(!out.fragments || (!out.accumulate && (out.fragment_op == GemvPrologue::Activation ||
                                                          (out.fragment_op == GemvPrologue::GatedActivation &&
                                                           m.tiles_interleave * 2 == m.rows))),
                    "pair-table GEMV: fragments need a plain output, and a gated activation tiles interleaving the halves");
  PMPD_CUDA_REQUIRE(in.prologue != GemvPrologue::Fragments || in.fragments, "pair-table GEMV: no fragments to read");
  auto s = static_cast<cudaStream_t>(stream);
  const bool launched = with_width<2>(bits, [&](auto B) { return launch<B()>(m, in, out, s); });
  PMPD_CUDA_CHECK(cudaGetLastError());
  return launched;
}

}  // namespace pmpd::cuda
