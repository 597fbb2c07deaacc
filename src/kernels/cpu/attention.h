// One query head's attention at a decode step over a 16-bit KV cache: the scores of every
// cached position, their softmax, and the weighted sum of the value rows.
#pragma once
#include <cstdint>

namespace pmpd::kernels {

// keys and values point at position 0's row of the query's KV head; position p's rows are
// p * stride elements on. hd (the head size) must be a multiple of 16. `scores` is scratch
// of len floats (it holds the softmax weights on return); out receives hd floats.
//
// The same bits as the loop it replaces, for every ISA: scores[p] = dot(F16, k_p, q, hd) *
// scale, softmax(scores, len), then out = 0 and add_scaled_f16(out, scores[p], v_p, hd)
// for p = 0, 1, ... in order. The vector versions run the dot inline (q stays in registers)
// and keep out in registers across positions instead of a call, a load and a store of
// every element per position.
void attend_f16(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len, int hd,
                float scale, float* scores, float* out);
// That loop itself, a call per row: the portable path, and the reference of tests and
// benchmarks (any head size).
void attend_f16_per_row(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len, int hd,
                        float scale, float* scores, float* out);

}  // namespace pmpd::kernels
