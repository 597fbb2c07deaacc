// The learned scheduler's network (the paper's, as in SamsungLabs/PMPD): a learned query
// per KV head attends over that head's prefill keys (scaled dot product, softmax), the
// attended values are averaged over heads, then LayerNorm and Linear-ReLU-Linear give
// logits over switch classes ("stay high for steps[c] decode steps"). Forward and
// backward are written out by hand (double precision; the tests check the gradients
// against finite differences); it is tiny, so predicting costs far below 1% of a prefill.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace pmpd {

// The prefill keys and values of one layer: [tokens][kv_heads][head_dim] each.
struct KvFeatures {
  int tokens = 0, heads = 0, head_dim = 0;
  std::vector<float> k, v;
};

struct SwitchNetShape {
  int heads = 0, head_dim = 0, hidden = 64, classes = 4;
};

class SwitchNet {
 public:
  SwitchNet() = default;
  SwitchNet(const SwitchNetShape& s, uint64_t seed);
  const SwitchNetShape& shape() const { return s_; }

  // Class logits for one prompt.
  std::vector<double> logits(const KvFeatures& f) const;
  int predict(const KvFeatures& f) const;
  // Cross-entropy of `label`; adds d loss / d parameter (scaled by `scale`) to grad.
  double loss_and_grad(const KvFeatures& f, int label, std::vector<double>& grad, double scale = 1.0) const;

  // All parameters as one flat vector (the order of save/load and of Adam).
  std::vector<double>& params() { return p_; }
  const std::vector<double>& params() const { return p_; }

  // GGUF with the network and `meta` strings/ints the scheduler needs (written by the caller).
  struct Tensors {
    const double *query, *ln_g, *ln_b, *w1, *b1, *w2, *b2;
  };
  Tensors tensors() const;

 private:
  // Offsets of each tensor in p_.
  size_t o_query() const { return 0; }
  size_t o_ln_g() const { return size_t(s_.heads) * s_.head_dim; }
  size_t o_ln_b() const { return o_ln_g() + size_t(s_.head_dim); }
  size_t o_w1() const { return o_ln_b() + size_t(s_.head_dim); }
  size_t o_b1() const { return o_w1() + size_t(s_.hidden) * s_.head_dim; }
  size_t o_w2() const { return o_b1() + size_t(s_.hidden); }
  size_t o_b2() const { return o_w2() + size_t(s_.classes) * s_.hidden; }
  size_t total() const { return o_b2() + size_t(s_.classes); }

  struct Trace;  // forward intermediates kept for the backward pass
  std::vector<double> forward(const KvFeatures& f, Trace* t) const;

  SwitchNetShape s_;
  std::vector<double> p_;
};

}  // namespace pmpd
