// Weighted 1-D clustering on a sorted array, the numerical core of the any-precision
// quantizer. Because the data are one-dimensional and sorted, every cluster of an
// optimal (or Lloyd-converged) clustering is a contiguous range, so cluster statistics
// come from prefix sums in O(1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pmpd::quant {

// Prefix sums of weights, weight*value and weight*value^2 over a sorted array.
class SortedWeighted {
 public:
  SortedWeighted(const std::vector<float>& sorted_values, const std::vector<float>& weights);
  int size() const { return int(v_.size()); }
  float value(int i) const { return v_[size_t(i)]; }
  double weight(int l, int r) const { return w_[size_t(r)] - w_[size_t(l)]; }
  // Weighted mean of [l, r); the plain mean when the range has no weight.
  double mean(int l, int r) const;
  // Weighted squared error of [l, r) around its weighted mean.
  double sse(int l, int r) const;

 private:
  std::vector<float> v_;
  std::vector<double> w_, wv_, wvv_;
};

// Cluster boundaries: cluster c is [bounds[c], bounds[c+1]).
using Bounds = std::vector<int>;

// Weighted k-means with k-means++ seeding (deterministic for a seed) and at most
// `iters` Lloyd iterations. Returns k+1 boundaries (empty clusters allowed).
Bounds weighted_kmeans(const SortedWeighted& d, int k, int iters, uint64_t seed);

// The exact weighted 2-means split of [l, r): the t in [l, r] minimising
// sse(l, t) + sse(t, r). Returns r when the range cannot usefully split.
int best_split(const SortedWeighted& d, int l, int r);

}  // namespace pmpd::quant
