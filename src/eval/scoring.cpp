#include "eval/scoring.h"

#include <algorithm>

#include "core/error.h"
#include "eval/bleu.h"
#include "eval/rouge.h"

namespace pmpd::eval {

bool is_known_metric(const std::string& m) {
  return m == "sacrebleu" || m == "bleu" || m == "chrf" || m == "rouge_l" || m == "exact_match" || m == "agreement";
}

double score_metric(const std::string& metric, const std::vector<std::string>& hyps,
                    const std::vector<Example>& examples, const std::vector<std::string>* agreement_refs) {
  PMPD_CHECK(hyps.size() == examples.size(), "{} outputs for {} examples", hyps.size(), examples.size());
  PMPD_CHECK(is_known_metric(metric), "unknown metric \"{}\" (sacrebleu, bleu, chrf, rouge_l, exact_match, agreement)",
             metric);
  if (hyps.empty()) return 0;
  if (metric == "sacrebleu" || metric == "bleu" || metric == "chrf") {
    // sacrebleu's layout: refs[r][i]; an example with fewer references repeats its first.
    size_t max_refs = 0;
    for (auto& e : examples) max_refs = std::max(max_refs, e.references.size());
    std::vector<std::vector<std::string>> refs(max_refs, std::vector<std::string>(examples.size()));
    for (size_t i = 0; i < examples.size(); ++i)
      for (size_t r = 0; r < max_refs; ++r)
        refs[r][i] = r < examples[i].references.size() ? examples[i].references[r] : examples[i].references[0];
    if (metric == "chrf") return corpus_chrf(hyps, refs);
    return metric == "sacrebleu" ? corpus_bleu(hyps, refs).score
                                 : corpus_bleu(hyps, refs, BleuTokenize::None, BleuSmooth::None).score;
  }
  if (metric == "agreement")
    PMPD_CHECK(agreement_refs && agreement_refs->size() == hyps.size(),
               "the agreement metric needs the outputs of a reference run");
  double sum = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    if (metric == "agreement") {
      sum += rouge_l_f1(hyps[i], (*agreement_refs)[i]);
      continue;
    }
    double best = 0;
    for (auto& r : examples[i].references)
      best = std::max(best, metric == "rouge_l" ? rouge_l_f1(hyps[i], r) : double(hyps[i] == r));
    sum += best;
  }
  return 100.0 * sum / double(hyps.size());
}

}  // namespace pmpd::eval
