#include "quant/weighted_clusters.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace pmpd::quant {

SortedWeighted::SortedWeighted(const std::vector<float>& v, const std::vector<float>& w)
    : v_(v), w_(v.size() + 1, 0.0), wv_(v.size() + 1, 0.0), wvv_(v.size() + 1, 0.0) {
  for (size_t i = 0; i < v.size(); ++i) {
    double wi = w[i], vi = v[i];
    w_[i + 1] = w_[i] + wi;
    wv_[i + 1] = wv_[i] + wi * vi;
    wvv_[i + 1] = wvv_[i] + wi * vi * vi;
  }
}

double SortedWeighted::mean(int l, int r) const {
  if (r <= l) return 0.0;
  double w = weight(l, r);
  if (w > 0) return (wv_[size_t(r)] - wv_[size_t(l)]) / w;
  double s = 0;
  for (int i = l; i < r; ++i) s += v_[size_t(i)];
  return s / (r - l);
}

double SortedWeighted::sse(int l, int r) const {
  double w = weight(l, r);
  if (r <= l || w <= 0) return 0.0;
  double wv = wv_[size_t(r)] - wv_[size_t(l)];
  return std::max(0.0, (wvv_[size_t(r)] - wvv_[size_t(l)]) - wv * wv / w);
}

namespace {

// Boundaries that assign each sorted value to its nearest centroid (centroids sorted).
Bounds assign(const SortedWeighted& d, const std::vector<double>& c) {
  const int k = int(c.size()), n = d.size();
  Bounds b(static_cast<size_t>(k + 1));
  b[0] = 0;
  b[size_t(k)] = n;
  int i = 0;
  for (int j = 1; j < k; ++j) {
    double mid = 0.5 * (c[size_t(j - 1)] + c[size_t(j)]);
    while (i < n && d.value(i) < mid) ++i;
    b[size_t(j)] = i;
  }
  return b;
}

}  // namespace

Bounds weighted_kmeans(const SortedWeighted& d, int k, int iters, uint64_t seed) {
  const int n = d.size();
  std::mt19937_64 rng(seed);
  // k-means++ seeding on the weighted points.
  std::vector<double> c;
  std::vector<double> dist(size_t(n), INFINITY);
  auto pick = [&](const std::vector<double>& p) {
    double total = 0;
    for (double x : p) total += x;
    if (total <= 0) return int(std::uniform_int_distribution<int>(0, n - 1)(rng));
    double r = std::uniform_real_distribution<double>(0, total)(rng);
    for (int i = 0; i < n; ++i)
      if ((r -= p[size_t(i)]) <= 0) return i;
    return n - 1;
  };
  std::vector<double> p(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) p[size_t(i)] = d.weight(i, i + 1) + 1e-30;
  c.push_back(d.value(pick(p)));
  while (int(c.size()) < k) {
    for (int i = 0; i < n; ++i) {
      double diff = d.value(i) - c.back();
      dist[size_t(i)] = std::min(dist[size_t(i)], diff * diff);
      p[size_t(i)] = (d.weight(i, i + 1) + 1e-30) * dist[size_t(i)];
    }
    c.push_back(d.value(pick(p)));
  }
  std::sort(c.begin(), c.end());
  Bounds b = assign(d, c);
  for (int it = 0; it < iters; ++it) {
    for (int j = 0; j < k; ++j)
      if (b[size_t(j + 1)] > b[size_t(j)]) c[size_t(j)] = d.mean(b[size_t(j)], b[size_t(j + 1)]);
    std::sort(c.begin(), c.end());
    Bounds nb = assign(d, c);
    if (nb == b) break;
    b = std::move(nb);
  }
  return b;
}

int best_split(const SortedWeighted& d, int l, int r) {
  if (r - l < 2) return r;
  double best = d.sse(l, r);
  int best_t = r;
  // Only positions between distinct values can separate clusters.
  for (int t = l + 1; t < r; ++t) {
    if (d.value(t) == d.value(t - 1)) continue;
    double s = d.sse(l, t) + d.sse(t, r);
    if (s < best) best = s, best_t = t;
  }
  return best_t;
}

}  // namespace pmpd::quant
