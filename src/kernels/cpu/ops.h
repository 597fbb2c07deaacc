// The element-wise and small operators of a transformer layer, in f32. Each works on
// one vector (or one token's heads); callers parallelise over tokens and heads.
#pragma once
#include <cstdint>
#include <vector>

namespace pmpd::kernels {

void rmsnorm(float* out, const float* x, const float* weight, int n, float eps);
void layernorm(float* out, const float* x, const float* weight, const float* bias, int n, float eps);

// Rotary embedding tables for one position: cos/sin of pos * inv_freq[i].
struct RopeTable {
  std::vector<float> inv_freq;  // rotary_dim / 2 entries, computed in f32 as PyTorch does
  RopeTable(int rotary_dim, float theta);
};

// Rotates the first rotary_dim entries of each of n_heads heads of size head_dim.
// interleaved: pairs (2i, 2i+1) (llama2.c, GGUF llama); otherwise pairs (i, i + r/2)
// (Hugging Face's rotate_half, GPT-NeoX).
void rope(float* x, int n_heads, int head_dim, int rotary_dim, int pos, const RopeTable& t, bool interleaved);

void softmax(float* x, int n);
void silu(float* x, int n);
void gelu_tanh(float* x, int n);
void add(float* x, const float* y, int n);
// o += w * v for one f16 row (an attention value row): each element a rounded product,
// then a rounded sum, as the f32 loop over the widened row computes it, so the result has
// the same bits; on x86 with F16C the row is widened in registers, not through memory.
void add_scaled_f16(float* o, float w, const uint16_t* v, int n);

}  // namespace pmpd::kernels
