#include "eval/rouge.h"

#include <algorithm>

namespace pmpd::eval {

std::vector<std::string> rouge_tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    char c = (ch >= 'A' && ch <= 'Z') ? char(ch - 'A' + 'a') : ch;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur += c;
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), row(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      row[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], row[j - 1]);
    std::swap(prev, row);
  }
  return prev[b.size()];
}

double rouge_l_f1(std::string_view candidate, std::string_view reference) {
  auto c = rouge_tokenize(candidate), r = rouge_tokenize(reference);
  if (c.empty() || r.empty()) return 0.0;
  double lcs = double(lcs_length(c, r));
  if (lcs == 0) return 0.0;
  double p = lcs / double(c.size()), rec = lcs / double(r.size());
  return 2 * p * rec / (p + rec);
}

}  // namespace pmpd::eval
