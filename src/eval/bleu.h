// Corpus BLEU (Papineni et al.) and its SacreBLEU-compatible form: the 13a tokenizer
// (mteval-v13a's rules) and exponential smoothing, as sacrebleu 2.x computes them.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace pmpd::eval {

// sacrebleu's "13a" tokenization of one line.
std::string tokenize_13a(std::string_view line);

struct BleuScore {
  double score = 0;                  // 0..100
  double precisions[4] = {0, 0, 0, 0};  // n-gram precisions in percent (after smoothing)
  double brevity_penalty = 0;
  long long sys_len = 0, ref_len = 0;
};

enum class BleuTokenize { None, Tok13a };
enum class BleuSmooth { None, Exp };

// refs[r][i] is the r-th reference of hypothesis i (sacrebleu's layout). The
// reference length of a segment is the closest to the hypothesis (shorter on ties).
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      BleuTokenize tok = BleuTokenize::Tok13a, BleuSmooth smooth = BleuSmooth::Exp);

// chrF (sacrebleu 2.x defaults: character 6-grams, beta 2, whitespace removed, no word
// n-grams); the best reference per segment by its own chrF.
double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                   int char_order = 6, double beta = 2.0);

}  // namespace pmpd::eval
