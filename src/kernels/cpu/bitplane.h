// Matrix-vector products over nested bit-plane weights (DESIGN: The nested weights).
// Row r's b-bit code of column j is made of bit j of planes 0..b-1 (plane 0 is the most
// significant bit); the weight is tables[b][r][code]. A b-bit product reads only planes
// 0..b-1 and the b-bit table, so fewer bits read proportionally less memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace pmpd::kernels {

struct Int8Tables;  // the integer kernels' byte tables, per width (bitplane.cpp)

struct BitPlaneMatrix {
  int64_t rows = 0, cols = 0;
  // Set by prepare_int8() where the integer kernels apply: each width's byte tables, built
  // the first time a product at that width needs them (int8_width). Copies share them.
  std::shared_ptr<Int8Tables> int8;
  int bits_min = 0, bits_max = 0;
  int64_t plane_stride = 0;  // bytes per (plane, row): cols rounded up to 64 bits
  int64_t group_size = 0;    // columns per table; 0: one table per row (a multiple of 64 otherwise)
  const uint8_t* planes = nullptr;             // [bits_max][rows][plane_stride]
  std::vector<const uint16_t*> tables;          // tables[b - bits_min]: [rows][2^b] f16
  // Dense-and-sparse (DNS): outliers kept exactly in CSR form. Row r's entries are
  // [sp_rowptr[r], sp_rowptr[r+1]); at every width they replace the dense weight.
  const int32_t* sp_rowptr = nullptr;
  const int32_t* sp_col = nullptr;
  const uint16_t* sp_val = nullptr;  // f16
  int64_t nnz = 0;

  static int64_t stride_for(int64_t cols) { return (cols + 63) / 64 * 8; }
  const uint8_t* plane(int k, int64_t r) const { return planes + (size_t(k) * size_t(rows) + size_t(r)) * size_t(plane_stride); }
  int64_t groups() const { return group_size > 0 ? (cols + group_size - 1) / group_size : 1; }
  int64_t group_of(int64_t col) const { return group_size > 0 ? col / group_size : 0; }
  const uint16_t* table(int bits, int64_t r, int64_t g = 0) const {
    return tables[size_t(bits - bits_min)] + ((size_t(r) * size_t(groups()) + size_t(g)) << bits);
  }
  // Bytes a b-bit matrix-vector product reads (planes + its table).
  size_t bytes_read(int bits) const {
    return size_t(rows) * (size_t(plane_stride) * bits + size_t(groups()) * (size_t(2) << bits)) + size_t(nnz) * 6 +
           (nnz ? size_t(rows + 1) * 4 : 0);
  }
};

// The weights of row r at width `bits`, widened to f32 (n = cols).
void bitplane_dequant_row(const BitPlaneMatrix& m, int bits, int64_t r, float* out);

// dot(row r at `bits`, x): the scalar reference and the dispatched kernel.
float bitplane_dot_scalar(const BitPlaneMatrix& m, int bits, int64_t r, const float* x);
float bitplane_dot(const BitPlaneMatrix& m, int bits, int64_t r, const float* x);

// Y[t, r] = row r at `bits` . X[t]; threads split rows. bits outside
// [bits_min, bits_max] is an error.
void bitplane_matmul(const BitPlaneMatrix& m, int bits, const float* X, int n_tokens, float* Y);

// ---- The integer decode kernel (AVX-512 VBMI + VNNI; AVX2; NEON). On 2-core machines a
// float FMA kernel is compute-bound long before memory; this one looks weights up as bytes
// (vpermb, pshufb, TBL), multiplies them with 8-bit activations and sums in int32 (vpdpbusd,
// maddubs, SDOT).
// Weights: the row's table rounded to 8 bits; activations: 8 bits per block of 256.

// Readies m for the integer kernels: each width's tables are built on first use, not here,
// so a load builds none and a run builds only the widths it decodes at (every width of a
// 7B model is ~0.7 GB of tables and ~0.7 s on two cores; its 3-bit ones 1/64 of that).
// Matrices with several tables per row (group_size > 0) keep to the exact kernels.
void prepare_int8(BitPlaneMatrix& m);

// Row r's table at `bits` as unsigned bytes (round(centroid / scale) + 128, 2^bits of
// them at bytes + (r << bits)) and its scale. Built on the first call for a width (rows in
// parallel; thread-safe), then a load and a pointer. m must have been prepared.
struct Int8Width {
  const uint8_t* bytes = nullptr;
  const float* scale = nullptr;
};
Int8Width int8_width(const BitPlaneMatrix& m, int bits);
// Host memory of the integer tables built so far (0 before any product, or unprepared).
size_t int8_table_bytes(const BitPlaneMatrix& m);

struct Int8Activations {
  static constexpr int kBlock = 256;
  std::vector<int8_t> q;       // cols, padded with zeros to a multiple of 64
  std::vector<float> scale;    // per block of 256
  double offset = 0;           // 128 * sum_block scale_block * sum(q in block): the +128 bias of the table
  // The AVX2 kernel's copy in its block order (slot s*32+i of a block: column 8i+s), |q| and
  // each block's sum; made by its products, once per input, empty for the other kernels.
  std::vector<int8_t> q_blocked;
  std::vector<uint8_t> q_abs_blocked;
  std::vector<int32_t> block_sum;
};
void quantize_activations(const float* x, int64_t cols, Int8Activations& out);

// An ISA's integer kernel at one width: rows [r0, r1) of y = m x on the calling thread.
using Int8RowsFn = void (*)(const BitPlaneMatrix& m, const Int8Width& tables, const Int8Activations& x, int64_t r0,
                            int64_t r1, float* y);

// y_i = M_i x for matrices that read the same input (q, k and v; gate and up), at `bits`:
// x is quantized once and one thread team computes every matrix's rows, where one product
// a matrix would quantize x and wake the team each time. The same numbers as one
// bitplane_matmul a matrix (which it falls back to where the integer kernel does not run).
void bitplane_matvec_many(std::span<const BitPlaneMatrix* const> ms, int bits, const float* x,
                          std::span<float* const> ys);

float bitplane_dot_int8_scalar(const BitPlaneMatrix& m, int bits, int64_t r, const Int8Activations& a);

enum class BitPlaneKernel { Exact, Int8 };
// Int8 wherever a vector ISA runs it (override: PMPD_BITPLANE=exact|int8).
BitPlaneKernel bitplane_kernel();
void set_bitplane_kernel(BitPlaneKernel k);  // Int8 falls back to Exact without the ISA

}  // namespace pmpd::kernels
