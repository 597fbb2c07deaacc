#include "sched/switch_net.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pmpd {

namespace {
constexpr double kLnEps = 1e-5;
}

SwitchNet::SwitchNet(const SwitchNetShape& s, uint64_t seed) : s_(s) {
  PMPD_CHECK(s.heads > 0 && s.head_dim > 0 && s.hidden > 0 && s.classes >= 2, "switch net: bad shape");
  p_.assign(total(), 0.0);
  std::mt19937_64 rng(seed);
  auto fill = [&](size_t off, size_t n, double scale) {
    std::normal_distribution<double> d(0.0, scale);
    for (size_t i = 0; i < n; ++i) p_[off + i] = d(rng);
  };
  fill(o_query(), size_t(s.heads) * s.head_dim, 0.1);
  std::fill(p_.begin() + long(o_ln_g()), p_.begin() + long(o_ln_g() + size_t(s.head_dim)), 1.0);
  fill(o_w1(), size_t(s.hidden) * s.head_dim, std::sqrt(2.0 / s.head_dim));
  fill(o_w2(), size_t(s.classes) * s.hidden, std::sqrt(1.0 / s.hidden));
}

SwitchNet::Tensors SwitchNet::tensors() const {
  const double* p = p_.data();
  return {p + o_query(), p + o_ln_g(), p + o_ln_b(), p + o_w1(), p + o_b1(), p + o_w2(), p + o_b2()};
}

struct SwitchNet::Trace {
  std::vector<double> attn;  // [heads][tokens] softmax weights
  std::vector<double> x, xhat, y, z1, z2;
  double inv_std = 0;
};

std::vector<double> SwitchNet::forward(const KvFeatures& f, Trace* t) const {
  PMPD_CHECK(f.heads == s_.heads && f.head_dim == s_.head_dim && f.tokens > 0,
             "switch net expects {} heads of {} (got {} of {}, {} tokens)", s_.heads, s_.head_dim, f.heads, f.head_dim,
             f.tokens);
  const int H = s_.heads, D = s_.head_dim, T = f.tokens, Hd = s_.hidden, C = s_.classes;
  const double* q = p_.data() + o_query();
  const double scale = 1.0 / std::sqrt(double(D));
  Trace local;
  Trace& tr = t ? *t : local;
  tr.attn.assign(size_t(H) * T, 0.0);
  tr.x.assign(size_t(D), 0.0);
  for (int h = 0; h < H; ++h) {
    double* a = &tr.attn[size_t(h) * T];
    double mx = -1e300;
    for (int tk = 0; tk < T; ++tk) {
      const float* k = &f.k[(size_t(tk) * H + h) * D];
      double s = 0;
      for (int d = 0; d < D; ++d) s += double(k[d]) * q[h * D + d];
      a[tk] = s * scale;
      mx = std::max(mx, a[tk]);
    }
    double z = 0;
    for (int tk = 0; tk < T; ++tk) z += (a[tk] = std::exp(a[tk] - mx));
    for (int tk = 0; tk < T; ++tk) {
      a[tk] /= z;
      const float* v = &f.v[(size_t(tk) * H + h) * D];
      for (int d = 0; d < D; ++d) tr.x[size_t(d)] += a[tk] * v[d] / H;
    }
  }
  double mean = 0, var = 0;
  for (double v : tr.x) mean += v;
  mean /= D;
  for (double v : tr.x) var += (v - mean) * (v - mean);
  var /= D;
  tr.inv_std = 1.0 / std::sqrt(var + kLnEps);
  tr.xhat.resize(size_t(D));
  tr.y.resize(size_t(D));
  const double *g = p_.data() + o_ln_g(), *b = p_.data() + o_ln_b();
  for (int d = 0; d < D; ++d) {
    tr.xhat[size_t(d)] = (tr.x[size_t(d)] - mean) * tr.inv_std;
    tr.y[size_t(d)] = g[d] * tr.xhat[size_t(d)] + b[d];
  }
  const double *w1 = p_.data() + o_w1(), *b1 = p_.data() + o_b1(), *w2 = p_.data() + o_w2(), *b2 = p_.data() + o_b2();
  tr.z1.assign(size_t(Hd), 0.0);
  for (int i = 0; i < Hd; ++i) {
    double s = b1[i];
    for (int d = 0; d < D; ++d) s += w1[size_t(i) * D + d] * tr.y[size_t(d)];
    tr.z1[size_t(i)] = s;
  }
  tr.z2.assign(size_t(C), 0.0);
  for (int c = 0; c < C; ++c) {
    double s = b2[c];
    for (int i = 0; i < Hd; ++i) s += w2[size_t(c) * Hd + i] * std::max(tr.z1[size_t(i)], 0.0);
    tr.z2[size_t(c)] = s;
  }
  return tr.z2;
}

std::vector<double> SwitchNet::logits(const KvFeatures& f) const { return forward(f, nullptr); }

int SwitchNet::predict(const KvFeatures& f) const {
  auto z = logits(f);
  return int(std::max_element(z.begin(), z.end()) - z.begin());
}

double SwitchNet::loss_and_grad(const KvFeatures& f, int label, std::vector<double>& grad, double scale) const {
  PMPD_CHECK(label >= 0 && label < s_.classes, "label {} outside 0..{}", label, s_.classes - 1);
  if (grad.size() != p_.size()) grad.assign(p_.size(), 0.0);
  Trace tr;
  forward(f, &tr);
  const int H = s_.heads, D = s_.head_dim, T = f.tokens, Hd = s_.hidden, C = s_.classes;
  // Softmax cross-entropy.
  const double mx = *std::max_element(tr.z2.begin(), tr.z2.end());
  double z = 0;
  for (double v : tr.z2) z += std::exp(v - mx);
  const double loss = std::log(z) + mx - tr.z2[size_t(label)];
  std::vector<double> dz2(static_cast<size_t>(C));
  for (int c = 0; c < C; ++c) dz2[size_t(c)] = (std::exp(tr.z2[size_t(c)] - mx) / z - (c == label)) * scale;
  // Linear 2 and ReLU.
  const double *w1 = p_.data() + o_w1(), *w2 = p_.data() + o_w2(), *g = p_.data() + o_ln_g();
  std::vector<double> dz1(static_cast<size_t>(Hd), 0.0);
  for (int c = 0; c < C; ++c) {
    grad[o_b2() + size_t(c)] += dz2[size_t(c)];
    for (int i = 0; i < Hd; ++i) {
      const double r = std::max(tr.z1[size_t(i)], 0.0);
      grad[o_w2() + size_t(c) * Hd + size_t(i)] += dz2[size_t(c)] * r;
      if (tr.z1[size_t(i)] > 0) dz1[size_t(i)] += w2[size_t(c) * Hd + i] * dz2[size_t(c)];
    }
  }
  // Linear 1.
  std::vector<double> dy(static_cast<size_t>(D), 0.0);
  for (int i = 0; i < Hd; ++i) {
    grad[o_b1() + size_t(i)] += dz1[size_t(i)];
    for (int d = 0; d < D; ++d) {
      grad[o_w1() + size_t(i) * D + size_t(d)] += dz1[size_t(i)] * tr.y[size_t(d)];
      dy[size_t(d)] += w1[size_t(i) * D + d] * dz1[size_t(i)];
    }
  }
  // LayerNorm.
  std::vector<double> dxhat(static_cast<size_t>(D));
  double m1 = 0, m2 = 0;
  for (int d = 0; d < D; ++d) {
    grad[o_ln_g() + size_t(d)] += dy[size_t(d)] * tr.xhat[size_t(d)];
    grad[o_ln_b() + size_t(d)] += dy[size_t(d)];
    dxhat[size_t(d)] = dy[size_t(d)] * g[d];
    m1 += dxhat[size_t(d)];
    m2 += dxhat[size_t(d)] * tr.xhat[size_t(d)];
  }
  m1 /= D, m2 /= D;
  std::vector<double> dx(static_cast<size_t>(D));
  for (int d = 0; d < D; ++d) dx[size_t(d)] = tr.inv_std * (dxhat[size_t(d)] - m1 - tr.xhat[size_t(d)] * m2);
  // Attention pooling: x = (1/H) sum_h sum_t a[h][t] v[t][h].
  const double inv_sqrt_d = 1.0 / std::sqrt(double(D));
  for (int h = 0; h < H; ++h) {
    const double* a = &tr.attn[size_t(h) * T];
    std::vector<double> dp(static_cast<size_t>(T));
    double dot = 0;
    for (int tk = 0; tk < T; ++tk) {
      const float* v = &f.v[(size_t(tk) * H + h) * D];
      double s = 0;
      for (int d = 0; d < D; ++d) s += dx[size_t(d)] * v[d];
      dp[size_t(tk)] = s / H;
      dot += a[tk] * dp[size_t(tk)];
    }
    for (int tk = 0; tk < T; ++tk) {
      const double ds = a[tk] * (dp[size_t(tk)] - dot) * inv_sqrt_d;
      const float* k = &f.k[(size_t(tk) * H + h) * D];
      for (int d = 0; d < D; ++d) grad[o_query() + size_t(h) * D + size_t(d)] += ds * k[d];
    }
  }
  return loss;
}

}  // namespace pmpd
