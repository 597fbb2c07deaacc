#include "eval/bleu.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace pmpd::eval {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// mteval 13a punctuation class: { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +  : ; < = > ? @  /
bool is_13a_symbol(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return (u >= 0x7b && u <= 0x7e) || (u >= 0x5b && u <= 0x60) || (u >= 0x20 && u <= 0x26) || (u >= 0x28 && u <= 0x2b) ||
         (u >= 0x3a && u <= 0x40) || u == '/';
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

// Python's re.sub for a two-character pattern: scan left to right, non-overlapping.
template <typename First, typename Second, typename Emit>
std::string sub2(const std::string& s, First first, Second second, Emit emit) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

using Counts = std::map<std::vector<std::string>, int>;

Counts ngrams(const std::vector<std::string>& toks, int n) {
  Counts c;
  for (size_t i = 0; i + size_t(n) <= toks.size(); ++i) ++c[std::vector<std::string>(toks.begin() + long(i), toks.begin() + long(i) + n)];
  return c;
}

}  // namespace

std::string tokenize_13a(std::string_view in) {
  std::string line(in);
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  std::string a;
  for (char c : line) {
    if (is_13a_symbol(c)) a += ' ', a += c, a += ' ';
    else a += c;
  }
  auto period_comma = [](char c) { return c == '.' || c == ','; };
  auto not_digit = [](char c) { return !is_digit(c); };
  a = sub2(a, not_digit, period_comma, [](std::string& o, char x, char y) { o += x, o += ' ', o += y, o += ' '; });
  a = sub2(a, period_comma, not_digit, [](std::string& o, char x, char y) { o += ' ', o += x, o += ' ', o += y; });
  a = sub2(a, is_digit, [](char c) { return c == '-'; }, [](std::string& o, char x, char y) { o += x, o += ' ', o += y, o += ' '; });
  std::string out;
  for (auto& w : split_ws(a)) out += (out.empty() ? "" : " ") + w;
  return out;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      BleuTokenize tok, BleuSmooth smooth) {
  PMPD_CHECK(!refs.empty(), "BLEU: no references");
  for (auto& r : refs) PMPD_CHECK(r.size() == hyps.size(), "BLEU: {} hypotheses but a reference stream of {}", hyps.size(), r.size());
  auto prep = [&](const std::string& s) { return split_ws(tok == BleuTokenize::Tok13a ? tokenize_13a(s) : s); };
  long long correct[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0};
  BleuScore b;
  for (size_t i = 0; i < hyps.size(); ++i) {
    auto h = prep(hyps[i]);
    b.sys_len += (long long)h.size();
    long long closest = -1;
    std::vector<Counts> max_ref(4);
    for (auto& stream : refs) {
      auto r = prep(stream[i]);
      long long rl = (long long)r.size(), diff = std::llabs(rl - (long long)h.size());
      if (closest < 0 || diff < std::llabs(closest - (long long)h.size()) ||
          (diff == std::llabs(closest - (long long)h.size()) && rl < closest))
        closest = rl;
      for (int n = 1; n <= 4; ++n)
        for (auto& [g, c] : ngrams(r, n)) max_ref[size_t(n - 1)][g] = std::max(max_ref[size_t(n - 1)][g], c);
    }
    b.ref_len += closest;
    for (int n = 1; n <= 4; ++n) {
      for (auto& [g, c] : ngrams(h, n)) {
        auto it = max_ref[size_t(n - 1)].find(g);
        correct[n - 1] += std::min(c, it == max_ref[size_t(n - 1)].end() ? 0 : it->second);
      }
      total[n - 1] += std::max<long long>(0, (long long)h.size() - n + 1);
    }
  }
  double smooth_mteval = 1.0, log_sum = 0;
  bool zero = false;
  for (int n = 0; n < 4; ++n) {
    if (total[n] == 0) {  // sacrebleu stops here: the remaining precisions stay 0
      zero = true;
      break;
    }
    if (correct[n] == 0) {
      if (smooth == BleuSmooth::Exp) {
        smooth_mteval *= 2;
        b.precisions[n] = 100.0 / (smooth_mteval * double(total[n]));
      } else {
        b.precisions[n] = 0;
      }
    } else {
      b.precisions[n] = 100.0 * double(correct[n]) / double(total[n]);
    }
  }
  for (int n = 0; n < 4; ++n) {
    if (b.precisions[n] <= 0) zero = true;
    else log_sum += std::log(b.precisions[n]);
  }
  b.brevity_penalty = b.sys_len >= b.ref_len ? 1.0 : b.sys_len > 0 ? std::exp(1.0 - double(b.ref_len) / double(b.sys_len)) : 0.0;
  b.score = zero ? 0.0 : b.brevity_penalty * std::exp(log_sum / 4);
  return b;
}

namespace {

std::vector<uint32_t> chars_no_space(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = utf8::next(s, i);
    // Python's str.split() whitespace: ASCII whitespace and the Unicode spaces
    bool ws = cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f) || cp == 0x85 || cp == 0xa0 ||
              cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
              cp == 0x205f || cp == 0x3000;
    if (!ws) out.push_back(cp);
  }
  return out;
}

std::map<std::vector<uint32_t>, int> char_ngrams(const std::vector<uint32_t>& c, int n) {
  std::map<std::vector<uint32_t>, int> m;
  for (size_t i = 0; i + size_t(n) <= c.size(); ++i) ++m[std::vector<uint32_t>(c.begin() + long(i), c.begin() + long(i) + n)];
  return m;
}

double chrf_from_stats(const std::vector<long long>& st, int order, double beta) {
  const double factor = beta * beta;
  double avg_p = 0, avg_r = 0;
  int eff = 0;
  for (int i = 0; i < order; ++i) {
    long long nh = st[size_t(3 * i)], nr = st[size_t(3 * i + 1)], nm = st[size_t(3 * i + 2)];
    if (nh > 0 && nr > 0) {
      avg_p += double(nm) / double(nh);
      avg_r += double(nm) / double(nr);
      ++eff;
    }
  }
  if (eff == 0) return 0.0;
  avg_p /= eff, avg_r /= eff;
  if (avg_p + avg_r == 0) return 0.0;
  return 100.0 * (1 + factor) * avg_p * avg_r / (factor * avg_p + avg_r);
}

}  // namespace

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs, int order,
                   double beta) {
  PMPD_CHECK(!refs.empty(), "chrF: no references");
  for (auto& r : refs) PMPD_CHECK(r.size() == hyps.size(), "chrF: {} hypotheses but a reference stream of {}", hyps.size(), r.size());
  std::vector<long long> total(size_t(3 * order), 0);
  for (size_t i = 0; i < hyps.size(); ++i) {
    auto h = chars_no_space(hyps[i]);
    std::vector<std::map<std::vector<uint32_t>, int>> hg;
    for (int n = 1; n <= order; ++n) hg.push_back(char_ngrams(h, n));
    std::vector<long long> best;
    double best_score = -1;
    for (auto& stream : refs) {
      auto r = chars_no_space(stream[i]);
      std::vector<long long> st(size_t(3 * order), 0);
      for (int n = 1; n <= order; ++n) {
        auto rg = char_ngrams(r, n);
        long long nh = 0, nr = 0, nm = 0;
        for (auto& [g, c] : hg[size_t(n - 1)]) {
          nh += c;
          auto it = rg.find(g);
          if (it != rg.end()) nm += std::min(c, it->second);
        }
        for (auto& [g, c] : rg) nr += c;
        if (rg.empty()) nh = 0;  // as sacrebleu: no hypothesis n-grams count where the reference has none
        st[size_t(3 * (n - 1))] = nh, st[size_t(3 * (n - 1) + 1)] = nr, st[size_t(3 * (n - 1) + 2)] = nm;
      }
      double s = chrf_from_stats(st, order, beta);
      if (s > best_score) best_score = s, best = st;
    }
    for (size_t k = 0; k < total.size(); ++k) total[k] += best[k];
  }
  return chrf_from_stats(total, order, beta);
}

}  // namespace pmpd::eval
