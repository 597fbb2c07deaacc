#include "quant/anyprec.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/weighted_clusters.h"

namespace pmpd::quant {

AnyPrecRow quantize_row_anyprec(const float* w, const float* sens, int n, int bits_min, int bits_max,
                                uint64_t seed, int kmeans_iters) {
  PMPD_CHECK(bits_min >= 1 && bits_min <= bits_max && bits_max <= 8, "bad bit range {}:{}", bits_min, bits_max);
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return w[a] < w[b]; });
  std::vector<float> v(static_cast<size_t>(n)), s(static_cast<size_t>(n));
  double total = 0;
  for (int i = 0; i < n; ++i) total += sens[order[size_t(i)]];
  // A row whose sensitivities sum to zero falls back to uniform weights.
  for (int i = 0; i < n; ++i) {
    v[size_t(i)] = w[order[size_t(i)]];
    s[size_t(i)] = total > 0 ? sens[order[size_t(i)]] : 1.f;
  }
  SortedWeighted d(v, s);

  AnyPrecRow q;
  q.bits_min = bits_min, q.bits_max = bits_max;
  Bounds b = weighted_kmeans(d, 1 << bits_min, kmeans_iters, seed);
  std::vector<float> parent;
  for (int bits = bits_min;; ++bits) {
    const int k = 1 << bits;
    std::vector<float> table(static_cast<size_t>(k));
    for (int c = 0; c < k; ++c) {
      int l = b[size_t(c)], r = b[size_t(c + 1)];
      // An empty cluster inherits its parent's centroid (or a neighbour's at the seed).
      if (r > l) table[size_t(c)] = float(d.mean(l, r));
      else if (!parent.empty()) table[size_t(c)] = parent[size_t(c / 2)];
      else table[size_t(c)] = c > 0 ? table[size_t(c - 1)] : v.empty() ? 0.f : v[0];
    }
    // Empty clusters at the seed level may break the order; keep codes ordered by value.
    for (int c = 1; c < k; ++c) table[size_t(c)] = std::max(table[size_t(c)], table[size_t(c - 1)]);
    q.tables.push_back(table);
    if (bits == bits_max) break;
    Bounds nb(static_cast<size_t>(2 * k + 1));
    for (int c = 0; c < k; ++c) {
      int l = b[size_t(c)], r = b[size_t(c + 1)];
      int t = best_split(d, l, r);
      nb[size_t(2 * c)] = l;
      nb[size_t(2 * c + 1)] = t;
    }
    nb[size_t(2 * k)] = n;
    parent = std::move(table);
    b = std::move(nb);
  }
  q.codes.assign(size_t(n), 0);
  const int k = 1 << bits_max;
  for (int c = 0; c < k; ++c)
    for (int i = b[size_t(c)]; i < b[size_t(c + 1)]; ++i) q.codes[size_t(order[size_t(i)])] = uint8_t(c);
  return q;
}

double weighted_error(const float* w, const float* sens, int n, const AnyPrecRow& q, int bits, bool round_f16) {
  const auto& t = q.tables[size_t(bits - q.bits_min)];
  const int shift = q.bits_max - bits;
  double e = 0;
  for (int j = 0; j < n; ++j) {
    const size_t base = q.group > 0 ? (size_t(j / q.group) << bits) : 0;
    float c = t[base + (q.codes[size_t(j)] >> shift)];
    if (round_f16) c = f16_to_f32(f32_to_f16(c));
    double diff = double(w[j]) - c;
    e += double(sens ? sens[j] : 1.f) * diff * diff;
  }
  return e;
}

AnyPrecRow quantize_row_uniform(const float* w, int n, int bits, int group) {
  AnyPrecRow q;
  q.bits_min = q.bits_max = bits;
  q.group = group > 0 && group < n ? group : 0;
  const int k = 1 << bits, gs = q.group > 0 ? q.group : std::max(n, 1);
  q.tables.emplace_back();
  q.codes.resize(static_cast<size_t>(n));
  for (int j0 = 0; j0 < std::max(n, 1); j0 += gs) {
    const int j1 = std::min(n, j0 + gs);
    float lo = j1 > j0 ? *std::min_element(w + j0, w + j1) : 0.f, hi = j1 > j0 ? *std::max_element(w + j0, w + j1) : 0.f;
    float scale = hi > lo ? (hi - lo) / float(k - 1) : 1.f;
    for (int c = 0; c < k; ++c) q.tables[0].push_back(lo + scale * float(c));
    for (int j = j0; j < j1; ++j) q.codes[size_t(j)] = uint8_t(std::clamp(int(std::lround((w[j] - lo) / scale)), 0, k - 1));
  }
  return q;
}

}  // namespace pmpd::quant
