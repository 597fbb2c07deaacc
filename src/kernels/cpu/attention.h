// A decode step's attention over a 16-bit KV cache for the query heads that share one KV
// head (one head without GQA): the scores of every cached position, their softmax, and the
// weighted sum of the value rows.
#pragma once
#include <cstdint>

namespace pmpd::kernels {

// q: `heads` query heads of hd floats, one after another (the heads of one KV group);
// keys and values point at position 0's row of their KV head, position p's rows p * stride
// elements on. hd must be a multiple of 16. scores: scratch of heads * len floats (head g's
// softmax weights at g * len on return); out: heads * hd floats.
//
// Each head gets the same bits as the loop this replaced, for every ISA: scores[p] =
// dot(F16, k_p, q, hd) * scale, softmax(scores, len), then out = 0 and add_scaled_f16(out,
// scores[p], v_p, hd) for p = 0, 1, ... in order. The vector versions run the dot inline (no
// call and dispatch a row), keep the output in registers across positions, and walk the
// cache in blocks of positions that every head of the group reads while the block is in L1,
// so a group of G heads reads its keys and values from memory once, not G times.
void attend_f16(const float* q, int heads, const uint16_t* keys, const uint16_t* values, int64_t stride, int len,
                int hd, float scale, float* scores, float* out);
// That loop itself for one head, a call per row: the portable path, and the reference of
// tests and benchmarks (any head size).
void attend_f16_per_row(const float* q, const uint16_t* keys, const uint16_t* values, int64_t stride, int len, int hd,
                        float scale, float* scores, float* out);

}  // namespace pmpd::kernels
