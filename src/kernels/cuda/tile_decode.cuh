// The tile layout of the tensor-core kernels and its decoders, shared by the decode GEMV
// (pair_lut_gemv.cu), the multi-token GEMM of short prompts (pair_lut_gemm.cu) and the
// prompt pass's dequantization: where each plane bit of a weight sits in the tiles, how B
// plane words become pair indices (2..4 bits) or index bytes (5..8 bits), the per-lane
// tables those index, and one task's item loads. docs/cuda.md describes the design.
// Everything here is device code inlined into each kernel file; the anonymous namespace
// keeps each file's copy its own.
#pragma once
#include <type_traits>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_math.cuh"

namespace pmpd::cuda {
namespace {

constexpr int kWarps = 16;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16;  // two row blocks of 8 (the mma's M: rows g and 8 + g)

// ---- The tile layout -------------------------------------------------------------
// Word (k, rb, cp, lane, h) of tiled[] = (((k * RB + rb) * CP + cp) * 32 + lane) * 2 + h
// holds plane k of row 8 rb + lane / 4, chunk c = 2 cp + h (128 columns). Its 16 pairs
// p = 2 j + hh (k-block j of 16 columns; hh: the A register of columns 2t or 2t + 8) cover columns
// 128 c + 16 j + 8 hh + 2 (lane % 4) + {0, 1}. Pair p = 4 r + i (register r, byte i) keeps
// its two bits (first column, second column) at
//   P(k, r, i) = 8 ((i - [r < k]) mod 4) + 2 ((r - k) mod 4),  P + 1,
// so one rotation by rho(r) = 2 (r - B + 1) (mod 32) brings every plane's bits of register
// r to byte bits 2 (B-1-k) and 2 (B-1-k) + 1, whatever k: the pair index interleaves the
// two codes (first code in the even bits, second in the odd bits).
__host__ __device__ constexpr int bit_position(int k, int r, int i) {
  return 8 * ((i - (r < k ? 1 : 0) + 4) % 4) + 2 * ((r - k + 4) % 4);
}
template <int B>
__host__ __device__ constexpr int rho(int r) {
  return ((2 * (r - B + 1)) % 32 + 32) % 32;
}
__host__ __device__ constexpr uint32_t rotl(uint32_t v, int s) { return s == 0 ? v : (v << s) | (v >> (32 - s)); }
// Right rotation: one funnel shift on the device (the decoders' rotations).
__host__ __device__ inline uint32_t rotr(uint32_t v, int s) {
#ifdef __CUDA_ARCH__
  return __funnelshift_r(v, v, s);
#else
  return rotl(v, (32 - s) % 32);
#endif
}
// Bits of plane k that register r takes, before its rotation.
template <int B>
__host__ __device__ constexpr uint32_t plane_mask(int k, int r) {
  return rotl(0x03030303u << (2 * (B - 1 - k)), rho<B>(r));
}
// The code of the first (even bits) or second (odd bits) weight of a pair index.
__host__ __device__ constexpr int even_bits(int e) {
  int v = 0;
  for (int m = 0; 2 * m < 16; ++m) v |= ((e >> (2 * m)) & 1) << m;
  return v;
}
__host__ __device__ constexpr int odd_bits(int e) { return even_bits(e >> 1); }

// ---- Widths 5..8 (the wide decoder) -------------------------------------------------
// A weight's code no longer fits a pair table (2^(2B) entries), so each weight is looked up
// on its own, in a table of 256 f16 entries a row indexed by a byte that holds the code's
// bits interleaved: planes 0..3 at the even bits 6, 4, 2, 0 (exactly where the 4-bit pair
// decode leaves the pair's first weight), planes 4..7 at the odd bits 7, 5, 3, 1. Planes
// 4..7 are tiled so that the bits of pair (r, i), column s, sit at
//   Q(k, r, i, s) = 8 i + 2 (7 - k) + 1 + s + rho4(r)  (mod 32),
// so one mask-merge and one rotation (the 4-bit pair decode's) give the first weights'
// index bytes, and the same words rotated one bit further the second weights'.
__host__ __device__ constexpr int wide_bit_position(int k, int r, int i, int s) {
  return (8 * i + 2 * (7 - k) + 1 + s + 2 * (r - 3) + 64) % 32;
}
// The bit of a tile word of plane k that holds pair (r, i), column s: the pair layout for
// planes 0..3, the wide one for 4..7. Every reader of the tiles goes through it.
__host__ __device__ constexpr int tile_bit(int k, int r, int i, int s) {
  return k < 4 ? bit_position(k, r, i) + s : wide_bit_position(k, r, i, s);
}
// Bits of wide plane k that code register r takes, before its rotation.
__host__ __device__ constexpr uint32_t wide_mask(int k, int r) { return rotl(rotl(0x03030303u, 2 * (7 - k) + 1), rho<4>(r)); }
// The index bit that plane k of a B-bit code takes.
__host__ __device__ constexpr int wide_index_bit(int k) { return k < 4 ? 2 * (3 - k) : 2 * (7 - k) + 1; }
// The code an index byte stands for, or -1 where it sets a bit of a plane past B (never read).
__host__ __device__ constexpr int wide_code(int e, int B) {
  int code = 0;
  for (int k = 0; k < 8; ++k) {
    const int bit = (e >> wide_index_bit(k)) & 1;
    if (k >= B && bit) return -1;
    if (k < B) code |= bit << (B - 1 - k);
  }
  return code;
}

// Bytes of one task's pair tables in shared memory: entry e of row block q for lane L at byte
// 256 e + 128 q + 4 L (the PRMT of pair_operands builds that address). The kernels place them
// first in their shared memory, aligned as TableAddress needs.
template <int B>
__host__ __device__ constexpr size_t table_bytes() {
  return size_t(256) << (2 * B);
}

struct Layout {
  int64_t row_blocks, chunk_pairs;  // RB (even), CP
};
__host__ __device__ inline Layout layout_of(const DeviceBitPlanes& m) {
  const int64_t H = m.tiles_interleave;
  return {H ? (H + 7) / 8 * 2 : (m.rows + kRows - 1) / kRows * 2, (m.cols + 255) / 256};
}
// The matrix row that row g (0..7) of tile row block rb holds, or -1 (padding). Rows in
// order, or two halves interleaved eight rows at a time (tiles_interleave).
__host__ __device__ inline int64_t tile_row(const DeviceBitPlanes& m, int64_t rb, int g) {
  if (const int64_t H = m.tiles_interleave) {
    const int64_t i = (rb >> 1) * 8 + g;
    return i < H ? (rb & 1) * H + i : -1;
  }
  const int64_t r = rb * 8 + g;
  return r < m.rows ? r : -1;
}
// Where matrix row r sits in the tiles: its row block and its row g (0..7) there (tile_row's inverse).
struct TilePlace {
  int64_t rb;
  int g;
};
__host__ __device__ inline TilePlace tile_place(const DeviceBitPlanes& m, int64_t r) {
  if (const int64_t H = m.tiles_interleave) {
    const int q = r >= H ? 1 : 0;
    return {2 * ((r - q * H) / 8) + q, int((r - q * H) % 8)};
  }
  return {r / 8, int(r % 8)};
}
// Row i (0..15) of a task: row g of its row block i / 8. 32-bit (the host checks the tiles
// fit 32-bit indices): registers are scarce at two blocks an SM, so only the kernels built
// for interleaved tiles (Mapped) look at tiles_interleave.
template <bool Mapped>
__device__ __forceinline__ int task_row(const DeviceBitPlanes& m, int task, int i) {
  const int H = Mapped ? int(m.tiles_interleave) : 0, g = i % 8;
  if (H) {
    const int j = 8 * task + g;
    return j < H ? (i / 8) * H + j : -1;
  }
  const int r = 16 * task + i;
  return r < int(m.rows) ? r : -1;
}

// ---- The tile layout word by word: the tiling kernel and the host twins (tests) go
// through these; the GEMV's DNS corrections (task_code) and the dequantization from the tiles
// compute the same coordinates for their own thread layouts. ----
// Tiled word idx (of tiled_words) of m: its 32 bits gathered from the on-disk planes.
__host__ __device__ inline uint32_t tile_word(const DeviceBitPlanes& m, int64_t idx) {
  const Layout lay = layout_of(m);
  const int h = int(idx & 1), lane = int((idx >> 1) & 31);
  int64_t rest = idx >> 6;
  const int64_t cp = rest % lay.chunk_pairs;
  rest /= lay.chunk_pairs;
  const int64_t rb = rest % lay.row_blocks;
  const int k = int(rest / lay.row_blocks);
  const int64_t row = tile_row(m, rb, lane / 4), c = 2 * cp + h;
  const int t = lane % 4;
  uint32_t word = 0;
  if (row >= 0)
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < 4; ++i) {
        const int p = 4 * r + i, j = p / 2, hh = p % 2;
        const int64_t col = c * 128 + 16 * j + 8 * hh + 2 * t;
        for (int second = 0; second < 2; ++second) {
          const int64_t cc = col + second;
          if (cc >= m.cols) continue;
          const uint32_t bit = (m.planes[(size_t(k) * m.rows + row) * m.plane_stride + (cc >> 3)] >> (cc & 7)) & 1u;
          word |= bit << tile_bit(k, r, i, second);
        }
      }
  return word;
}

// The code of weight (r, j) at `bits`, read from the tiles (plane 0 the most significant bit).
__host__ __device__ inline int tiled_code(const DeviceBitPlanes& m, const uint32_t* tiled, int bits, int64_t r, int64_t j) {
  const Layout lay = layout_of(m);
  const auto [rb, g] = tile_place(m, r);
  const int64_t cp = j / 256;
  const int h = int((j / 128) % 2), cc = int(j % 128);
  const int kb = cc / 16, hh = (cc % 16) / 8, t = (cc % 8) / 2, second = cc % 2;
  const int lane = 4 * g + t, p = 2 * kb + hh, reg = p / 4, i = p % 4;
  const int64_t plane_words = lay.row_blocks * lay.chunk_pairs * 64;
  const int64_t word = ((rb * lay.chunk_pairs + cp) * 32 + lane) * 2 + h;
  int code = 0;
  for (int k = 0; k < bits; ++k) {
    code = (code << 1) | int((tiled[k * plane_words + word] >> tile_bit(k, reg, i, second)) & 1u);
  }
  return code;
}

// The B-bit code of column j of task row i (0..15), read from the tiles (the DNS
// corrections: a few a row), in 32-bit arithmetic like the item loads; plane_words in uint2.
template <int B>
__device__ __forceinline__ int task_code(const DeviceBitPlanes& m, uint32_t plane_words, int cp32, int task, int i, int j) {
  const int cc = j & 127, p = 2 * (cc >> 4) + ((cc >> 3) & 1), reg = p >> 2, pi = p & 3, second = cc & 1;
  const uint32_t word = ((uint32_t(2 * task + i / 8) * uint32_t(cp32) + uint32_t(j >> 8)) * 32u +
                         uint32_t(4 * (i % 8) + ((cc >> 1) & 3))) * 2u + uint32_t((j >> 7) & 1);
  const uint32_t* tiles = reinterpret_cast<const uint32_t*>(m.tiled);
  int code = 0;
  for (int k = 0; k < B; ++k) {
    code = (code << 1) | int((tiles[uint32_t(k) * 2u * plane_words + word] >> tile_bit(k, reg, pi, second)) & 1u);
  }
  return code;
}

// Outlier o (CSR index, column j) of matrix row r, task row i: its value less the dense B-bit
// weight it replaces, the DNS correction's factor for x[j].
template <int B>
__device__ __forceinline__ float outlier_delta(const DeviceBitPlanes& m, uint32_t plane_words, int cp32, int task, int i,
                                               int r, int32_t o, int j) {
  const __half* val = reinterpret_cast<const __half*>(m.sp_val);
  const __half* table = reinterpret_cast<const __half*>(m.tables[B]);
  return __half2float(val[o]) - __half2float(table[(int64_t(r) << B) + task_code<B>(m, plane_words, cp32, task, i, j)]);
}

__device__ __forceinline__ uint32_t pack_half2(__half lo, __half hi) {
  return uint32_t(__half_as_ushort(lo)) | (uint32_t(__half_as_ushort(hi)) << 16);
}

// This warp's share of the pair-table entries of both row blocks, for every lane's copy.
// Warp w fills entries e = w * n + u (n = 2^(2B) / warps): their first codes are first_w +
// the even bits of u, their second codes second_w + the odd bits of u, so each lane loads
// the few centroids it needs once and the unrolled loop picks registers by constant index.
template <int B>
struct TableShare {
  static constexpr int kPerWarp = (1 << (2 * B)) / kWarps;
  static constexpr int kUBits = kPerWarp <= 1 ? 0 : kPerWarp == 2 ? 1 : kPerWarp == 4 ? 2 : kPerWarp == 8 ? 3 : 4;
  static constexpr int kFirst = 1 << ((kUBits + 1) / 2), kSecond = 1 << (kUBits / 2);
  __half f[2][kFirst], s[2][kSecond];

  // centroid(q, c): centroid c of this lane's row in row block q (row g or 8 + g).
  template <class Centroid>
  __device__ void load_by(Centroid&& centroid) {
    const int e0 = (threadIdx.x / 32) * kPerWarp;
    const int first_w = even_bits(e0), second_w = odd_bits(e0);
#pragma unroll
    for (int q = 0; q < 2; ++q) {
#pragma unroll
      for (int i = 0; i < kFirst; ++i) f[q][i] = centroid(q, first_w + i);
#pragma unroll
      for (int i = 0; i < kSecond; ++i) s[q][i] = centroid(q, second_w + i);
    }
  }
  // cent: the task's 16 rows of 2^B centroids, staged in shared memory (4-byte aligned). A
  // lane's centroids come in runs of kFirst and kSecond from even codes: read two at a time
  // where the runs allow (half the shared-memory loads: building the tables is a GEMV's
  // start-up, on its critical path where a block starts after the kernel before has ended).
  __device__ void load(const __half* cent) {
    if constexpr (kFirst % 2 == 0 && kSecond % 2 == 0) {
      const int e0 = (threadIdx.x / 32) * kPerWarp;
      const int first_w = even_bits(e0), second_w = odd_bits(e0);
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        const __half* row = cent + ((8 * q + (threadIdx.x % 32) / 4) << B);
#pragma unroll
        for (int i = 0; i < kFirst; i += 2) {
          const __half2 v = *reinterpret_cast<const __half2*>(row + first_w + i);
          f[q][i] = __low2half(v), f[q][i + 1] = __high2half(v);
        }
#pragma unroll
        for (int i = 0; i < kSecond; i += 2) {
          const __half2 v = *reinterpret_cast<const __half2*>(row + second_w + i);
          s[q][i] = __low2half(v), s[q][i + 1] = __high2half(v);
        }
      }
    } else {
      load_by([&](int q, int c) { return cent[((8 * q + (threadIdx.x % 32) / 4) << B) + c]; });
    }
  }
  __device__ void store(uint8_t* tables) const {
    const int e0 = (threadIdx.x / 32) * kPerWarp, lane = threadIdx.x % 32;
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      uint32_t* dst = reinterpret_cast<uint32_t*>(tables) + 32 * q + lane;
#pragma unroll
      for (int u = 0; u < kPerWarp; ++u) dst[(e0 + u) * 64] = pack_half2(f[q][even_bits(u)], s[q][odd_bits(u)]);
    }
  }
};

// TableShare's layout built by row lanes (4 bits). Lane L takes row g = L % 8 of each row
// block and its warp's entries u = t + 4 j (t = L / 8), and writes an entry's four lane copies
// (four consecutive words) by one 16-byte store: a quarter-warp's lanes (g = 0..7) write 128
// consecutive bytes, so the stores stay conflict-free and a lane loads only the centroids of its
// entries (2 + 2 a row block) from rows 32 bytes apart, as TableShare does: a quarter of the
// stores and packs with the same loads. At 4 bits (a 64 KiB table a task, rebuilt as the rolling
// GEMV walks): Vicuna-7B 568 -> 573 tokens/s on an H200 (stop 45); at 3 bits it lost 1.8%
// (tables built once, before the wait), so 2..3 bits keep TableShare. (stop 43's tables4.diff
// cut the stores alike but loaded per chunk, with conflicts: -8.8% at 4 bits.)
template <int B>
struct RowLaneShare {
  static_assert(B == 3 || B == 4, "row lanes need at least four entries a warp");
  static constexpr int kPerWarp = (1 << (2 * B)) / kWarps, kJ = kPerWarp / 4, kHalf = kJ > 1 ? 2 : 1;
  __half f[2][kHalf], s[2][kHalf];
  __device__ void load(const __half* cent) {
    const int lane = threadIdx.x % 32, g = lane % 8, t = lane / 8, e0 = (threadIdx.x / 32) * kPerWarp;
    const int first_w = even_bits(e0) + (t & 1), second_w = odd_bits(e0) + (t >> 1);
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const __half* row = cent + ((8 * q + g) << B);
#pragma unroll
      for (int h = 0; h < kHalf; ++h) f[q][h] = row[first_w + 2 * h], s[q][h] = row[second_w + 2 * h];
    }
  }
  __device__ void store(uint8_t* tables) const {
    const int lane = threadIdx.x % 32, g = lane % 8, t = lane / 8, e0 = (threadIdx.x / 32) * kPerWarp;
    uint4* dst = reinterpret_cast<uint4*>(tables) + (e0 + t) * 16 + g;
#pragma unroll
    for (int q = 0; q < 2; ++q)
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const uint32_t v = pack_half2(f[q][j & (kHalf - 1)], s[q][j >> 1]);
        dst[64 * j + 8 * q] = make_uint4(v, v, v, v);  // entry e0 + t + 4 j, words 32 q + 4 g..
      }
  }
};
// The GEMVs' table builder at width B.
template <int B>
using TableBuild = std::conditional_t<B == 4, RowLaneShare<B>, TableShare<B>>;

// D += A B with A the 16 x 16 weights (row-major fragments a0..a3) and B the x columns.
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint2 b) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b.x), "r"(b.y));
}

__device__ __forceinline__ uint32_t load_shared(uint32_t address) {
  uint32_t v;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(address));
  return v;
}

// Where this task's pair tables are. Widths 2 and 3 address them absolutely: the table
// buffer is aligned to its size, its address bits 8..15 above the entry index ride in the
// spare top bits of every code byte (merged in with the first plane, at no cost), and bits
// 16..31 are the lane base's; so one PRMT makes the whole address. Width 4 fills all 8
// bits with the index: its address is relative and one add follows the PRMT.
template <int B>
struct TableAddress {
  static constexpr bool kAbsolute = B <= 3;
  uint32_t lane_base[2];  // per row block
  uint32_t inject[4];     // per code register, before its rotation
  const uint8_t* relative_base;
  __device__ void set(uint32_t shared_address, const uint8_t* generic, int lane) {
    relative_base = generic;
    const uint32_t hi = kAbsolute ? shared_address & 0xffff0000u : 0u;
    lane_base[0] = hi | uint32_t(4 * lane), lane_base[1] = hi | uint32_t(4 * lane + 128);
    const uint32_t bytes = kAbsolute ? ((shared_address >> 8) & 0xffu) * 0x01010101u : 0u;
#pragma unroll
    for (int r = 0; r < 4; ++r) inject[r] = rotl(bytes, rho<B>(r));
  }
  // The table `offset` bytes into a region of tables (shared_address, generic: the region's).
  // Relative tables (4 bits: 64 KiB each, so an offset is a multiple of 2^16) carry the offset
  // in the lane bases' bytes 2..3, which the PRMT keeps: a look-up then adds only the region's
  // base, one uniform register. (Added to the base instead, a slot's offset cost an IMAD a
  // look-up in the 4-bit rolling GEMV's SASS: 64 an item, stop 44; without it, Vicuna-7B's
  // 4-bit decode went from 529 to 567 tokens/s on an H200, stop 45.)
  __device__ void set(uint32_t shared_address, const uint8_t* generic, uint32_t offset, int lane) {
    if constexpr (kAbsolute) {
      set(shared_address + offset, generic + offset, lane);
    } else {
      static_assert(table_bytes<B>() % 65536 == 0, "a relative table's offset must leave bits 0..15 to the PRMT");
      set(shared_address, generic, lane);
      lane_base[0] |= offset, lane_base[1] |= offset;
    }
  }
  __device__ __forceinline__ uint32_t load(uint32_t address) const {
    if constexpr (kAbsolute) return load_shared(address);
    return *reinterpret_cast<const uint32_t*>(relative_base + address);
  }
};

// The A registers of k-block 2r + i / 2 of code register r (i = 0 or 2) from a decoder's
// operand(q, b): a[q][hh] for row block q and column half hh (columns 2t or 2t + 8), passed to
// mma_16816 as a[0][0], a[1][0], a[0][1], a[1][1].
template <class Operand>
__device__ __forceinline__ void a_registers(Operand&& operand, int i, uint32_t (&a)[2][2]) {
#pragma unroll
  for (int q = 0; q < 2; ++q)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) a[q][hh] = operand(q, i + hh);
}

// The decoders' index arithmetic, shared by the kernel and its host twin (tests). Pair
// decode (2..4 bits): code register r's 4 pair indices (a byte each) from B plane words,
// with `inject` merged in (the absolute table address bits; 0 on the host).
template <int B>
__host__ __device__ inline uint32_t pair_indices(const uint32_t (&p)[B], int r, uint32_t inject) {
  uint32_t t = (p[0] & plane_mask<B>(0, r)) | inject;
#pragma unroll
  for (int k = 1; k < B; ++k) t |= p[k] & plane_mask<B>(k, r);
  return rotr(t, rho<B>(r));
}
// Wide decode (5..8 bits): code register r's index bytes of the pairs' first (w1) and second
// (w2) weights (see wide_bit_position).
template <int B>
__host__ __device__ inline void wide_indices(const uint32_t (&p)[B], int r, uint32_t& w1, uint32_t& w2) {
  const uint32_t first = rotl(0x55555555u, rho<4>(r));  // t's first weights, lw's second ones
  uint32_t t = p[0] & plane_mask<4>(0, r), lw = p[4] & wide_mask(4, r);
#pragma unroll
  for (int k = 1; k < 4; ++k) t |= p[k] & plane_mask<4>(k, r);
#pragma unroll
  for (int k = 5; k < B; ++k) lw |= p[k] & wide_mask(k, r);
  w1 = rotr((t & first) | (lw & ~first), rho<4>(r)), w2 = rotr((t & ~first) | (lw & first), rho<4>(r) + 1);
}

// One chunk of both row blocks: per code register, the B plane words of each row block
// become 4 pair indices; per k-block, one mma takes both row blocks' weights (A rows 0..7:
// row block 0, rows 8..15: row block 1). acc[i / 2]: two independent accumulation chains.
// A word of weights: read once a decode step, so evict-first in L1 and L2 (ld.global.cs):
// streaming a step's weights through L2 would otherwise evict what the kernels read again
// soon (their code, x, the centroids, the norm weights, the attention's q, k, v).
__device__ __forceinline__ uint2 load_weights(const uint2* p) {
#ifdef PMPD_CUDA_WEIGHTS_LDG  // for comparisons: the read-only path with normal eviction
  return __ldg(p);
#else
  return __ldcs(p);
#endif
}

// A lane's words of item (task, cp): for each row block q and plane k, the 64 bits of chunks
// 2 cp (.x) and 2 cp + 1 (.y). 32-bit indices (the host checks the tiles fit): 64-bit address
// arithmetic was a tenth of the GEMV loop's instructions.
template <int B>
__device__ __forceinline__ void load_item(const uint2* tiled, uint32_t plane_words, int cp32, int task, int cp, int lane,
                                          uint2 (&dst)[2][B]) {
  const uint2* base = tiled + ((uint32_t(task) * 2u * uint32_t(cp32) + uint32_t(cp)) * 32u + uint32_t(lane));
#pragma unroll
  for (int q = 0; q < 2; ++q)
#pragma unroll
    for (int k = 0; k < B; ++k) dst[q][k] = load_weights(base + (uint32_t(k) * plane_words + uint32_t(q * cp32 * 32)));
}
// Asks L2 for a warp's item (prefetch.global.L2: no register held until it lands), so that
// its load into registers an item later finds its lines there: more of a step's bytes in
// flight than the one item a warp its registers hold. An item is 2 B runs of 256 bytes (row
// block q, plane k), two lines each: lane l < 4 B asks for line l % 2 of run l / 2.
template <int B>
__device__ __forceinline__ void prefetch_item_l2(const uint2* tiled, uint32_t plane_words, int cp32, int task, int cp,
                                                 int lane) {
  if (lane < 4 * B) {
    const int run = lane / 2, q = run / B, k = run % B;
    const uint2* p = tiled + ((uint32_t(task) * 2u * uint32_t(cp32) + uint32_t(cp)) * 32u +
                              uint32_t(k) * plane_words + uint32_t(q * cp32 * 32) + uint32_t(16 * (lane % 2)));
    dev::prefetch_l2(p);
  }
}

// The plane words of chunk half h (0: chunk 2 cp, 1: chunk 2 cp + 1) of a loaded item.
template <int B>
__device__ __forceinline__ void item_half(const uint2 (&w)[2][B], int h, uint32_t (&p)[2][B]) {
#pragma unroll
  for (int q = 0; q < 2; ++q)
#pragma unroll
    for (int k = 0; k < B; ++k) p[q][k] = h ? w[q][k].y : w[q][k].x;
}

// A loaded item's words into another item's registers (a prefetch ring's step).
template <int B>
__device__ __forceinline__ void copy_item(const uint2 (&from)[2][B], uint2 (&to)[2][B]) {
#pragma unroll
  for (int q = 0; q < 2; ++q)
#pragma unroll
    for (int k = 0; k < B; ++k) to[q][k] = from[q][k];
}

// The decode of one chunk of both row blocks at 2..4 bits, handed on register by register:
// use(r, operand), operand(q, b) the A register (an f16 pair) of row block q for byte b of
// code register r. The GEMV multiplies them (chunk_mma), the dequantization stores them.
template <int B, class Use>
__device__ __forceinline__ void pair_operands(const uint32_t (&p)[2][B], const TableAddress<B>& ta, Use&& use) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const uint32_t c[2] = {pair_indices<B>(p[0], r, ta.inject[r]), pair_indices<B>(p[1], r, ta.inject[r])};
    // Byte b of c becomes byte 1 of the table address (256 e); bytes 0, 2, 3 are the lane's.
    use(r, [&](int q, int b) { return ta.load(__byte_perm(ta.lane_base[q], c[q], 0x3200u | ((4u + b) << 4))); });
  }
}

__device__ __forceinline__ uint32_t load_shared_u16(uint32_t address) {
  uint32_t v;
  asm volatile("ld.shared.u16 %0, [%1];\n" : "=r"(v) : "r"(address));
  return v;
}
__device__ __forceinline__ void store_shared_x4(uint32_t address, uint32_t v) {
  asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(address), "r"(v) : "memory");
}

// The wide decoder's tables, both buffers in one 64 KiB region aligned to 64 KiB: entry e
// of buffer u for lane L at byte 256 e + 128 u + 4 L holds the f16 centroids of the lane's
// rows g and 8 + g (g = L / 4), so one PRMT of a lane base and an index byte makes the
// address and a 16-bit load fetches one weight. Four lanes share a row: one 16-byte store
// writes their copies.
constexpr uint32_t kWideRegion = 65536;

// One chunk of both row blocks at a width 5..8 (see wide_bit_position): per code register
// and row block, 4 + (B - 4) mask-merges, two more for the two index words, two rotations;
// per weight a PRMT and a 16-bit load; an IMAD pairs two weights into an mma operand.
template <int B, class Use>
__device__ __forceinline__ void wide_operands(const uint32_t (&p)[2][B], const uint32_t (&lane_base)[2], Use&& use) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    uint32_t w1[2], w2[2];
#pragma unroll
    for (int q = 0; q < 2; ++q) wide_indices<B>(p[q], r, w1[q], w2[q]);
    use(r, [&](int q, int b) {
      const uint32_t sel = 0x3200u | ((4u + b) << 4);
      const uint32_t lo = load_shared_u16(__byte_perm(lane_base[q], w1[q], sel));
      const uint32_t hi = load_shared_u16(__byte_perm(lane_base[q], w2[q], sel));
      // The pair packed by an IMAD (FMA pipe), not a PRMT (the ALU's, which the look-ups'
      // addresses keep busy): Vicuna-7B on an H200, 5 bits 376.7 -> 386.0 tokens/s, 6 bits
      // +2.1%, 7 bits +2.2%, 8 bits +1.5% (stop 46).
      uint32_t packed;
      asm("mad.lo.u32 %0, %1, 65536, %2;\n" : "=r"(packed) : "r"(hi), "r"(lo));
      return packed;
    });
  }
}

// A task's wide tables: thread t fills entries e = t / 8 + 64 j (j < 4) for rows g = t % 8
// and 8 + g. Its centroids come straight from the device tables, loaded a task ahead (in
// flight during the task before), so no centroids are staged in shared memory.
template <int B, bool Mapped>
struct WideTableFill {
  static constexpr int kJobs = 256 * 8 / kThreads;
  uint32_t codes = 0;  // byte j: the code of entry j (valid ones)
  uint32_t valid = 0;  // bit j
  unsigned short c0[kJobs], c1[kJobs];
  __device__ void init() {
#pragma unroll
    for (int j = 0; j < kJobs; ++j) {
      const int code = wide_code(int(threadIdx.x / 8) + 64 * j, B);
      if (code >= 0) valid |= 1u << j, codes |= uint32_t(code) << (8 * j);
    }
  }
  __device__ void load(const DeviceBitPlanes& m, int task) {
    const unsigned short* table = reinterpret_cast<const unsigned short*>(m.tables[B]);
    const int g = threadIdx.x % 8, r0 = task_row<Mapped>(m, task, g), r1 = task_row<Mapped>(m, task, 8 + g);
#pragma unroll
    for (int j = 0; j < kJobs; ++j) {
      const int code = int((codes >> (8 * j)) & 0xffu);
      const bool v = (valid >> j) & 1u;
      c0[j] = v && r0 >= 0 ? __ldg(table + (int64_t(r0) << B) + code) : 0;
      c1[j] = v && r1 >= 0 ? __ldg(table + (int64_t(r1) << B) + code) : 0;
    }
  }
  __device__ void store(uint32_t region, int buf) const {
    const uint32_t base = region + uint32_t(buf) * 128u + (threadIdx.x % 8) * 16u + (threadIdx.x / 8) * 256u;
#pragma unroll
    for (int j = 0; j < kJobs; ++j)
      if ((valid >> j) & 1u) store_shared_x4(base + uint32_t(j) * 64u * 256u, uint32_t(c0[j]) | (uint32_t(c1[j]) << 16));
  }
};

// The two mma of code register r of a chunk (k-blocks 2r and 2r + 1): operand(q, b) gives
// row block q's A register for byte b of the register (b = i + hh: the pair at column 2t,
// or 2t + 8, of k-block 2r + i / 2).
template <class Operand>
__device__ __forceinline__ void mma_register(const uint4* xf, int r, Operand&& operand, float (&acc)[2][4]) {
  const uint4 x = xf[4 * r];  // k-blocks 2r and 2r + 1 of the chunk
#pragma unroll
  for (int i = 0; i < 4; i += 2) {
    uint32_t a[2][2];
    a_registers(operand, i, a);
    mma_16816(acc[i / 2], a[0][0], a[1][0], a[0][1], a[1][1], i == 0 ? make_uint2(x.x, x.y) : make_uint2(x.z, x.w));
  }
}

template <int B>
__device__ __forceinline__ void chunk_mma(const uint32_t (&p)[2][B], const uint4* xf, const TableAddress<B>& ta,
                                          float (&acc)[2][4]) {
  pair_operands<B>(p, ta, [&](int r, auto&& operand) { mma_register(xf, r, operand, acc); });
}

template <int B>
__device__ __forceinline__ void chunk_mma_wide(const uint32_t (&p)[2][B], const uint4* xf, const uint32_t (&lane_base)[2],
                                               float (&acc)[2][4]) {
  wide_operands<B>(p, lane_base, [&](int r, auto&& operand) { mma_register(xf, r, operand, acc); });
}

template <int B>
__host__ __device__ constexpr bool is_wide() {
  return B > 4;
}
// Shared memory for the tables (both buffers) and the alignment they need.
template <int B>
__host__ __device__ constexpr size_t table_region_bytes() {
  if constexpr (is_wide<B>()) return kWideRegion;
  else return 2 * table_bytes<B>();
}
template <int B>
__host__ __device__ constexpr uint32_t table_align() {
  if constexpr (is_wide<B>()) return kWideRegion;
  else return TableAddress<B>::kAbsolute ? uint32_t(table_bytes<B>()) : 16u;
}

}  // namespace
}  // namespace pmpd::cuda
