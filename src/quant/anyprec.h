// Nested ("any-precision") quantization of one weight row (DESIGN: The nested weights).
// A seed clustering at bits_min by weighted k-means, then every higher width by
// splitting each cluster in two (exact weighted 2-means inside the cluster), the new bit
// appended as least significant: code_b = code_{b+1} >> 1 for every b.
#pragma once
#include <cstdint>
#include <vector>

namespace pmpd::quant {

struct AnyPrecRow {
  int bits_min = 2, bits_max = 8;
  int group = 0;                            // columns per table (0: one table for the row)
  std::vector<uint8_t> codes;               // bits_max-bit code per column
  std::vector<std::vector<float>> tables;   // tables[b - bits_min]: 2^b centroids per group, ascending
};

// `w`: the row; `sens`: per-column sensitivity (>= 0; e.g. mean squared activation).
AnyPrecRow quantize_row_anyprec(const float* w, const float* sens, int n, int bits_min, int bits_max,
                                uint64_t seed, int kmeans_iters = 50);

// Weighted squared error sum_j sens_j (w_j - table[code_j >> (bits_max - b)])^2.
double weighted_error(const float* w, const float* sens, int n, const AnyPrecRow& q, int bits,
                      bool round_f16 = false);

// Round-to-nearest on an even grid between each group's min and max (one scale and zero
// point per `group` columns; 0: the whole row): the plain baseline, expressed as one
// single-width table per group.
AnyPrecRow quantize_row_uniform(const float* w, int n, int bits, int group = 0);

}  // namespace pmpd::quant
