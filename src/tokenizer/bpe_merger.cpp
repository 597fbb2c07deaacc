#include "tokenizer/bpe_merger.h"

#include <queue>

namespace pmpd {

std::vector<int> bpe_merge(std::vector<int> ids, const MergeRule& rule) {
  const int n = int(ids.size());
  if (n < 2) return ids;
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;

  struct Cand {
    double priority;
    int left, right_id, left_id, merged;
    bool operator>(const Cand& o) const {
      return priority != o.priority ? priority > o.priority : left > o.left;
    }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int left) {
    int right = next[left];
    if (left < 0 || right < 0) return;
    if (auto m = rule(ids[left], ids[right]))
      heap.push({m->priority, left, ids[right], ids[left], m->merged_id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int right = next[c.left];
    // Skip stale candidates: a side was merged away or changed since it was queued.
    if (!alive[c.left] || right < 0 || ids[c.left] != c.left_id || ids[right] != c.right_id) continue;
    ids[c.left] = c.merged;
    alive[right] = false;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    if (prev[c.left] >= 0) push(prev[c.left]);
    push(c.left);
  }
  std::vector<int> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
  return out;
}

}  // namespace pmpd
