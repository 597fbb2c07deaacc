// The prompt pass's quantized layers straight from the tiles: Y = X W_b^T on the tensor cores,
// without writing W_b out as f16 first. Two kernels: a multi-token GEMM for short prompts (the
// default up to 32 tokens at 2..4 bits, 8 at 5..8) and a GEMM tile for longer ones at 2..3 bits
// (opt-in: slower than dequantize + cuBLAS so far).
//
// The decode GEMV (pair_lut_gemv.cu) multiplies each 16 x 16 block of decoded weights (the
// mma's A operand) by a B operand whose 8 columns all hold the one token's x. Here the 8
// columns are 8 different tokens, so one decode of the weights serves 8 tokens a mma, and a
// block of G token groups (8 G tokens) reuses each decoded operand G times. Everything else
// is the GEMV's: 16-row tasks whose 16 warps split the columns, the same pair tables (2..4
// bits) or single-weight tables (5..8) in shared memory, the same DNS corrections; the warps'
// partial sums meet in shared memory once a task. The tokens' x is staged once per block as
// f16 B fragments; where it does not fit shared memory next to the tables, the columns are
// split into ranges, one launch each, the later ones adding to Y.
//
// The other prompt path, dequantizing the layer to f16 and calling cuBLAS, writes and reads
// 2 bytes a weight whatever the prompt's length: for a few tokens that dominates, while for
// hundreds of tokens cuBLAS's tiling wins (docs/cuda.md, "Prompt processing", measures both).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tile_decode.cuh"

namespace pmpd::cuda {

namespace {

constexpr int kGroup = 8;                           // tokens a token group (the mma's N)
constexpr size_t kGroupBytesPerCp = 256 * kGroup * 2;  // a token group's f16 x for one chunk pair
// A token group's partial sums: 16 rows of kGroup tokens, rows kPitch floats apart (odd: the
// reduction's threads, one a row, read 16 different banks).
constexpr int kPitch = kGroup + 1, kGroupPartial = kRows * kPitch;

// Where token g (0..7) of a token group keeps column c (counted from the launch's first
// column): 16 bytes a lane and k-block pair (kp = c / 32), lane 4 g + t holding its B registers
// b0, b1 of both k-blocks (b0 = the pair at column 2t, b1 = the pair at 2t + 8). A warp's 32
// lanes read 512 consecutive bytes: no bank conflicts. Returns the column's half index.
__device__ __forceinline__ int group_slot(int c, int g) {
  const int kb = c >> 4, kk = c & 15;
  return ((((kb >> 1) * 32 + 4 * g + ((kk & 7) >> 1)) * 4 + (kb & 1) * 2 + (kk >> 3)) * 2) + (kk & 1);
}

// Columns col and col + 1 of token t of X (f32 [n][cols]) as an f16 pair, zero past n and past
// cols; one 8-byte load where `aligned` (cols even and X 8-byte aligned).
__device__ __forceinline__ uint32_t token_pair(const float* x, int n, int cols, int t, int col, bool aligned) {
  float2 v = {0.f, 0.f};
  if (t < n) {
    const float* row = x + int64_t(t) * cols;
    if (aligned && col + 1 < cols) v = *reinterpret_cast<const float2*>(row + col);
    else v = {col < cols ? row[col] : 0.f, col + 1 < cols ? row[col + 1] : 0.f};
  }
  return pack_half2(__float2half_rn(v.x), __float2half_rn(v.y));
}
__device__ __forceinline__ bool pairs_aligned(const float* x, int cols) {
  return cols % 2 == 0 && (reinterpret_cast<uintptr_t>(x) & 7) == 0;
}

// One buffer of tables (a task's are stored after the barrier that ends the task before); the
// wide decoder's two buffers interleave in one region, so it keeps the region.
template <int B>
__host__ __device__ constexpr size_t gemm_table_bytes() {
  if constexpr (is_wide<B>()) return kWideRegion;
  else return table_bytes<B>();
}
// Shared memory: tables (aligned), x [G][ncp * 256 * 8] halves, partial sums [kWarps + 1][G][16][kPitch].
template <int B, int G>
constexpr size_t fixed_smem() {
  const size_t align_pad = table_align<B>() > 16 ? table_align<B>() : 0;
  return align_pad + gemm_table_bytes<B>() + sizeof(float) * (kWarps + 1) * G * kGroupPartial;
}
// Block (bx, by) takes tokens [8 G by, 8 G (by + 1)) and the tasks bx, bx + gridDim.x, ...;
// columns [256 cp_begin, 256 cp_end). y[t][r] = (or +=) the dot product of row r and x[t].
template <int B, int G>
__global__ void __launch_bounds__(kThreads, 1)
    pair_lut_gemm_kernel(DeviceBitPlanes m, const float* __restrict__ x, int n, float* __restrict__ y, int cp_begin,
                         int cp_end, bool accumulate) {
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr bool Wide = is_wide<B>();
  constexpr int T = kGroup * G;  // tokens a block
  const Layout lay = layout_of(m);
  const int tasks = int(lay.row_blocks / 2), cp32 = int(lay.chunk_pairs), cols = int(m.cols);
  const int ncp = cp_end - cp_begin, c0 = cp_begin * 256, tok0 = int(blockIdx.y) * T;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t smem_address = uint32_t(__cvta_generic_to_shared(smem));
  const uint32_t align = table_align<B>();
  uint8_t* tables = smem + ((align - smem_address % align) % align);
  const uint32_t tables_address = uint32_t(__cvta_generic_to_shared(tables));
  __half* xs = reinterpret_cast<__half*>(tables + gemm_table_bytes<B>());
  const int group_halves = ncp * 256 * kGroup;
  float* partial = reinterpret_cast<float*>(xs + size_t(G) * group_halves);
  float* dns = partial + kWarps * G * kGroupPartial;  // [G][16][kPitch]: the rows' outlier corrections

  // x of the block's tokens as f16 B fragments: a thread converts two columns of a token at a
  // time (consecutive threads, consecutive column pairs: coalesced loads).
  const bool aligned = pairs_aligned(x, cols);
  const int pairs = ncp * 128;
  for (int i = threadIdx.x; i < T * pairs; i += blockDim.x) {
    const int tok = i / pairs, c = 2 * (i % pairs);
    reinterpret_cast<uint32_t*>(xs + size_t(tok / kGroup) * group_halves)[group_slot(c, tok % kGroup) / 2] =
        token_pair(x, n, cols, tok0 + tok, c0 + c, aligned);
  }

  // A task's tables: their centroids are loaded into registers a task ahead (in flight during
  // the task before) and stored at the top of the task.
  const __half* centroids = reinterpret_cast<const __half*>(m.tables[B]);
  TableShare<Wide ? 4 : B> share;  // (unused by the wide decoder)
  WideTableFill<B, true> fill;
  auto load_tables = [&](int task) {
    if constexpr (Wide) {
      fill.load(m, task);
    } else {
      const int r0 = task_row<true>(m, task, lane / 4), r1 = task_row<true>(m, task, 8 + lane / 4);
      share.load_by([&](int q, int c) {
        const int r = q ? r1 : r0;
        return r >= 0 ? centroids[(int64_t(r) << B) + c] : __float2half(0.f);
      });
    }
  };
  if constexpr (Wide) fill.init();
  if (int(blockIdx.x) < tasks) load_tables(int(blockIdx.x));
  TableAddress<Wide ? 4 : B> ta;
  ta.set(tables_address, tables, lane);
  const uint32_t wide_base[2] = {tables_address | uint32_t(4 * lane), tables_address | uint32_t(4 * lane) | 2u};

  // Each warp's stream of items (task, chunk pair), loaded one ahead across tasks as in the GEMV.
  struct Item {
    int task, cp;
  };
  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(cp32) * 32u;  // in uint2
  auto advance = [&](Item it) {
    it.cp += kWarps;
    if (it.cp >= cp_end) it.cp = cp_begin + warp, it.task += int(gridDim.x);
    return it;
  };
  auto load = [&](const Item& it, uint2 (&dst)[2][B]) {
    if (warp < ncp && it.task < tasks) load_item<B>(tiled, plane_words, cp32, it.task, it.cp, lane, dst);
  };
  uint2 w[2][2][B];
  Item next{int(blockIdx.x), cp_begin + warp};
  load(next, w[0]), next = advance(next);
  const uint4* xsv = reinterpret_cast<const uint4*>(xs);

  for (int task = blockIdx.x; task < tasks; task += gridDim.x) {
    if constexpr (Wide) fill.store(tables_address, 0);
    else share.store(tables);
    __syncthreads();  // the tables (and, the first time, x) are in place
    if (task + int(gridDim.x) < tasks) load_tables(task + int(gridDim.x));
    // Per token group; one token group keeps two chains (even and odd k-blocks) so that its
    // mma do not wait on one another, more groups are independent chains already.
    constexpr int C = G == 1 ? 2 : 1;
    float acc[G][C][4] = {};
    for (int cp = cp_begin + warp; cp < cp_end; cp += kWarps) {
      load(next, w[1]);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        uint32_t p[2][B];
        item_half<B>(w[0], h, p);
        const uint4* xf = xsv + (2 * (cp - cp_begin) + h) * 4 * 32 + lane;
        // Code register r covers k-blocks 2r and 2r + 1: one 16-byte load of x a token group.
        auto use = [&](int r, auto&& operand) {
          uint4 xv[G];
#pragma unroll
          for (int gi = 0; gi < G; ++gi) xv[gi] = xf[gi * (group_halves / 8) + 32 * r];
#pragma unroll
          for (int i = 0; i < 4; i += 2) {
            uint32_t a[2][2];
            a_registers(operand, i, a);
#pragma unroll
            for (int gi = 0; gi < G; ++gi)
              mma_16816(acc[gi][(i / 2) % C], a[0][0], a[1][0], a[0][1], a[1][1],
                        i == 0 ? make_uint2(xv[gi].x, xv[gi].y) : make_uint2(xv[gi].z, xv[gi].w));
          }
        };
        if constexpr (Wide) wide_operands<B>(p, wide_base, use);
        else pair_operands<B>(p, ta, use);
      }
#pragma unroll
      for (int q = 0; q < 2; ++q)
#pragma unroll
        for (int k = 0; k < B; ++k) w[0][q][k] = w[1][q][k];
      next = advance(next);
    }
    // D: lane 4g + t holds rows g (d0, d1) and 8 + g (d2, d3) of tokens 2t and 2t + 1.
    {
      float* part = partial + warp * G * kGroupPartial;
      const int g = lane / 4, t = lane % 4;
#pragma unroll
      for (int gi = 0; gi < G; ++gi) {
        float* pg = part + gi * kGroupPartial;
        float d[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) d[k] = C == 2 ? acc[gi][0][k] + acc[gi][C - 1][k] : acc[gi][0][k];
        pg[g * kPitch + 2 * t] = d[0], pg[g * kPitch + 2 * t + 1] = d[1];
        pg[(g + 8) * kPitch + 2 * t] = d[2], pg[(g + 8) * kPitch + 2 * t + 1] = d[3];
      }
    }
    if (m.nnz) {  // DNS outliers of this column range replace the dense weight; warp w: row w
      // Lane l takes token l % 8 of each group and every fourth outlier from l / 8 on.
      const int r = task_row<true>(m, task, warp), c1 = c0 + ncp * 256, tk = lane % kGroup;
      float s[G] = {};
      if (r >= 0)
        for (int32_t i = m.sp_rowptr[r] + lane / kGroup; i < m.sp_rowptr[r + 1]; i += 32 / kGroup) {
          const int j = m.sp_col[i];
          if (j < c0 || j >= c1) continue;
          const float d = outlier_delta<B>(m, plane_words, cp32, task, warp, r, i, j);
#pragma unroll
          for (int gi = 0; gi < G; ++gi) s[gi] += d * __half2float(xs[size_t(gi) * group_halves + group_slot(j - c0, tk)]);
        }
#pragma unroll
      for (int gi = 0; gi < G; ++gi) {
        float v = s[gi];
        v += __shfl_xor_sync(0xffffffffu, v, 8);
        v += __shfl_xor_sync(0xffffffffu, v, 16);
        if (lane < kGroup) dns[gi * kGroupPartial + warp * kPitch + tk] = v;
      }
    }
    __syncthreads();  // partial sums complete
    for (int o = threadIdx.x; o < T * kRows; o += blockDim.x) {
      const int tok = o / kRows, i = o % kRows, t = tok0 + tok;
      const int r = task_row<true>(m, task, i);
      if (r < 0 || t >= n) continue;
      const int at = (tok / kGroup) * kGroupPartial + i * kPitch + tok % kGroup;
      float s = m.nnz ? dns[at] : 0.f;
      for (int w2 = 0; w2 < kWarps; ++w2) s += partial[w2 * G * kGroupPartial + at];
      float* dst = y + int64_t(t) * m.rows + r;
      *dst = accumulate ? *dst + s : s;
    }
  }
}

template <int B, int G>
void launch_gemm(const DeviceBitPlanes& m, const float* x, int n, float* y, cudaStream_t s) {
  const Layout lay = layout_of(m);
  const int cp_total = int(lay.chunk_pairs), tasks = int(lay.row_blocks / 2);
  // One block an SM (128 registers a thread): two blocks of one token group at 2..3 bits (64
  // registers, as the GEMV) were slower at 8 tokens (1369 against 1490 tokens/s, Vicuna-7B, 3
  // bits). An SM has 228 KiB of shared memory, 1 KiB of it reserved for each block.
  constexpr size_t kSmemMax = 227 * 1024;
  const size_t fixed = fixed_smem<B, G>();
  const int per_launch = int((kSmemMax - fixed) / (G * kGroupBytesPerCp));
  PMPD_CUDA_REQUIRE(per_launch >= 1, "multi-token GEMM: no room for x");
  const int launches = (cp_total + per_launch - 1) / per_launch;
  const int ncp = (cp_total + launches - 1) / launches;
  const int token_blocks = (n + kGroup * G - 1) / (kGroup * G);
  // The resident blocks (the tables and x fill the shared memory) shared by the token blocks.
  const int resident = multiprocessor_count();
  const int bx = std::max(1, std::min(tasks, (resident + token_blocks - 1) / token_blocks));
  const size_t smem = fixed + size_t(ncp) * G * kGroupBytesPerCp;
  allow_dynamic_smem<pair_lut_gemm_kernel<B, G>>(smem);
  for (int l = 0; l < launches; ++l) {
    const int begin = l * ncp, end = std::min(cp_total, begin + ncp);
    if (begin >= end) break;
    pair_lut_gemm_kernel<B, G><<<dim3(unsigned(bx), unsigned(token_blocks)), kThreads, smem, s>>>(m, x, n, y, begin, end,
                                                                                                 l > 0);
  }
}

// ---- Longer prompts: a GEMM tile -------------------------------------------------------
// The kernel above splits a task's columns over 16 warps that share one task's tables, so x
// of 8-16 tokens is all a block can keep and every 16 tokens decode the weights again. Here
// each warp owns one 16-row task for the whole K, with its own pair tables (16 KiB at 3 bits,
// so 2..3 bits only), and a block of 8 such warps walks the chunk pairs with 64 tokens of x
// staged a chunk pair at a time (double-buffered, 32 KiB each): one decode of the weights
// serves 64 tokens, and no partial sums cross warps.
constexpr int kTileWarps = 8;                  // 16-row tasks a block (128 rows)
constexpr int kTileGroups = 8;                 // token groups a block (64 tokens)
constexpr int kTileTokens = kTileGroups * kGroup;
constexpr int kTileThreads = 32 * kTileWarps;
constexpr size_t kTileXBytes = size_t(kTileGroups) * kGroupBytesPerCp;  // x of one chunk pair: 32 KiB

// X (f32 [n][cols]) in the tile kernel's order: [token tile][chunk pair][group][group_slot],
// zero past n and past cols; a thread a column pair of a token.
__global__ void tile_x_kernel(const float* __restrict__ x, int n, int cols, int cp32, int tiles, uint16_t* __restrict__ out) {
  const int pairs = cp32 * 128;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= int64_t(tiles) * kTileTokens * pairs) return;
  const int tok = int(idx / pairs), c = 2 * int(idx % pairs);
  const int tile = tok / kTileTokens, gi = (tok % kTileTokens) / kGroup, cp = c / 256;
  const int64_t base = ((int64_t(tile) * cp32 + cp) * kTileGroups + gi) * (kGroupBytesPerCp / 2);
  reinterpret_cast<uint32_t*>(out + base)[group_slot(c % 256, tok % kGroup) / 2] =
      token_pair(x, n, cols, tok, c, pairs_aligned(x, cols));
}

// Block (bx, by): tasks 8 bx .. 8 bx + 7 (one a warp), tokens 64 by .. 64 by + 63.
template <int B>
__global__ void __launch_bounds__(kTileThreads, 1)
    pair_lut_gemm_tile_kernel(DeviceBitPlanes m, const uint16_t* __restrict__ xt, const float* __restrict__ x, int n,
                              float* __restrict__ y) {
  extern __shared__ __align__(16) uint8_t smem[];
  const Layout lay = layout_of(m);
  const int tasks = int(lay.row_blocks / 2), cp32 = int(lay.chunk_pairs), cols = int(m.cols);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int task = int(blockIdx.x) * kTileWarps + warp, tile = int(blockIdx.y), tok0 = tile * kTileTokens;
  const bool active = task < tasks;  // idle warps still stage x and meet the barriers
  // The warps' tables, each aligned to its size (absolute addresses), then x's two buffers.
  const uint32_t smem_address = uint32_t(__cvta_generic_to_shared(smem));
  constexpr uint32_t kAlign = uint32_t(table_bytes<B>());
  uint8_t* tables = smem + ((kAlign - smem_address % kAlign) % kAlign);
  uint8_t* own = tables + size_t(warp) * table_bytes<B>();
  uint8_t* xbuf = tables + size_t(kTileWarps) * table_bytes<B>();

  const uint4* xsrc = reinterpret_cast<const uint4*>(xt) + size_t(tile) * cp32 * (kTileXBytes / 16);
  auto stage = [&](int cp) {  // x of chunk pair cp into buffer cp & 1, 16 bytes a copy
    const uint4* src = xsrc + size_t(cp) * (kTileXBytes / 16);
    uint4* dst = reinterpret_cast<uint4*>(xbuf + (cp & 1) * kTileXBytes);
    for (int i = threadIdx.x; i < int(kTileXBytes / 16); i += kTileThreads) dev::copy_async<16>(dst + i, src + i, true);
    dev::copy_async_commit();
  };
  stage(0);

  // The warp's pair tables, every entry once: lane L's copy of entry e at 256 e + 128 q + 4 L.
  const __half* centroids = reinterpret_cast<const __half*>(m.tables[B]);
  if (active) {
    __half c[2][1 << B];
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const int r = task_row<true>(m, task, 8 * q + lane / 4);
#pragma unroll
      for (int k = 0; k < (1 << B); ++k) c[q][k] = r >= 0 ? centroids[(int64_t(r) << B) + k] : __float2half(0.f);
    }
    uint32_t* dst = reinterpret_cast<uint32_t*>(own);
#pragma unroll
    for (int e = 0; e < (1 << (2 * B)); ++e)
#pragma unroll
      for (int q = 0; q < 2; ++q) dst[e * 64 + 32 * q + lane] = pack_half2(c[q][even_bits(e)], c[q][odd_bits(e)]);
  }
  TableAddress<B> ta;
  ta.set(uint32_t(__cvta_generic_to_shared(own)), own, lane);

  const uint2* tiled = reinterpret_cast<const uint2*>(m.tiled);
  const uint32_t plane_words = uint32_t(lay.row_blocks) * uint32_t(cp32) * 32u;  // in uint2
  uint2 w[2][2][B];  // this chunk pair's plane words and the next one's, in flight
  if (active) load_item<B>(tiled, plane_words, cp32, task, 0, lane, w[0]);
  float acc[kTileGroups][4] = {};
  for (int cp = 0; cp < cp32; ++cp) {
    dev::copy_async_wait_all();  // this thread's copies of chunk pair cp have landed
    __syncthreads();             // everyone's have (and the tables); chunk pair cp - 1 is done
    if (cp + 1 < cp32) {
      stage(cp + 1);  // into the buffer chunk pair cp - 1 used
      if (active) load_item<B>(tiled, plane_words, cp32, task, cp + 1, lane, w[1]);
    }
    if (!active) continue;
    const uint4* xs = reinterpret_cast<const uint4*>(xbuf + (cp & 1) * kTileXBytes);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t p[2][B];
      item_half<B>(w[0], h, p);
      // Code register r: k-blocks 2r and 2r + 1 of chunk 2 cp + h, both row blocks; one
      // 16-byte load of x a token group feeds both k-blocks' mma.
      pair_operands<B>(p, ta, [&](int r, auto&& operand) {
        uint32_t a[2][2][2];  // [k-block][row block][column half]
        a_registers(operand, 0, a[0]);
        a_registers(operand, 2, a[1]);
#pragma unroll
        for (int gi = 0; gi < kTileGroups; ++gi) {
          const uint4 xv = xs[(gi * 8 + 4 * h + r) * 32 + lane];
          mma_16816(acc[gi], a[0][0][0], a[0][1][0], a[0][0][1], a[0][1][1], make_uint2(xv.x, xv.y));
          mma_16816(acc[gi], a[1][0][0], a[1][1][0], a[1][0][1], a[1][1][1], make_uint2(xv.z, xv.w));
        }
      });
    }
#pragma unroll
    for (int q = 0; q < 2; ++q)
#pragma unroll
      for (int k = 0; k < B; ++k) w[0][q][k] = w[1][q][k];
  }
  if (!active) return;
  // D: lane 4g + t holds rows g (d0, d1) and 8 + g (d2, d3) of tokens 2t and 2t + 1 of each group.
  const int g = lane / 4, t = lane % 4;
  const int64_t rows = m.rows;
  const int r0 = task_row<true>(m, task, g), r1 = task_row<true>(m, task, 8 + g);
#pragma unroll
  for (int gi = 0; gi < kTileGroups; ++gi)
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int tok = tok0 + gi * kGroup + 2 * t + s;
      if (tok >= n) continue;
      if (r0 >= 0) y[tok * rows + r0] = acc[gi][s];
      if (r1 >= 0) y[tok * rows + r1] = acc[gi][2 + s];
    }
  if (m.nnz) {  // DNS outliers replace the dense weight: + (value - dense) x[j], a lane per token
    __syncwarp();  // the stores above are visible to the warp's other lanes
    for (int i = 0; i < kRows; ++i) {
      const int r = task_row<true>(m, task, i);
      if (r < 0) continue;
      for (int32_t o = m.sp_rowptr[r]; o < m.sp_rowptr[r + 1]; ++o) {
        const int j = m.sp_col[o];
        const float d = outlier_delta<B>(m, plane_words, cp32, task, i, r, o, j);
        for (int tok = tok0 + lane; tok < min(n, tok0 + kTileTokens); tok += 32) y[tok * rows + r] += d * x[int64_t(tok) * cols + j];
      }
    }
  }
}

}  // namespace

bool pair_lut_gemm(const DeviceBitPlanes& m, int bits, const float* x, int n, float* y, void* stream) {
  if (!m.tiled || bits < 2 || bits > m.tiled_planes || n < 1) return false;
  PMPD_CUDA_REQUIRE(tiled_words(m, bits) < (int64_t(1) << 32), "multi-token GEMM: a matrix beyond 32-bit tile indices");
  auto s = static_cast<cudaStream_t>(stream);
  with_width<2>(bits, [&](auto B) {
    // Two token groups a block reuse each decoded weight twice. Four were slower at 32 tokens
    // (2315 against 3337 tokens/s, Vicuna-7B, 3 bits): x then needs more launches over column
    // ranges and the partial sums grow with the tokens (docs/cuda.md).
    if (n > kGroup) launch_gemm<B(), 2>(m, x, n, y, s);
    else launch_gemm<B(), 1>(m, x, n, y, s);
  });
  PMPD_CUDA_CHECK(cudaGetLastError());
  return true;
}

int64_t tile_gemm_scratch_halves(int n, int64_t cols) {
  return int64_t((n + kTileTokens - 1) / kTileTokens) * ((cols + 255) / 256) * int64_t(kTileXBytes / 2);
}

bool pair_lut_gemm_tile(const DeviceBitPlanes& m, int bits, const float* x, int n, float* y, uint16_t* scratch,
                        void* stream) {
  if (!m.tiled || bits < 2 || bits > 3 || bits > m.tiled_planes || n < 1) return false;
  PMPD_CUDA_REQUIRE(tiled_words(m, bits) < (int64_t(1) << 32), "tile GEMM: a matrix beyond 32-bit tile indices");
  auto s = static_cast<cudaStream_t>(stream);
  const Layout lay = layout_of(m);
  const int cp32 = int(lay.chunk_pairs), tasks = int(lay.row_blocks / 2), tiles = (n + kTileTokens - 1) / kTileTokens;
  const int64_t threads = int64_t(tiles) * kTileTokens * cp32 * 128;
  tile_x_kernel<<<unsigned((threads + 255) / 256), 256, 0, s>>>(x, n, int(m.cols), cp32, tiles, scratch);
  with_width<2>(bits, [&](auto B) {
    if constexpr (B() <= 3) {
      // The tables' alignment (one table's size at most), the warps' tables, x's two buffers.
      const size_t smem = (kTileWarps + 1) * table_bytes<B()>() + 2 * kTileXBytes;
      allow_dynamic_smem<pair_lut_gemm_tile_kernel<B()>>(smem);
      pair_lut_gemm_tile_kernel<B()><<<dim3(unsigned((tasks + kTileWarps - 1) / kTileWarps), unsigned(tiles)), kTileThreads,
                                       smem, s>>>(m, scratch, x, n, y);
    }
  });
  PMPD_CUDA_CHECK(cudaGetLastError());
  return true;
}

}  // namespace pmpd::cuda
