// Scores a set of generated texts for one task metric, on a 0..100 scale, the way the
// report tables and the calibration searches both need it.
#pragma once
#include <string>
#include <vector>

#include "eval/task.h"

namespace pmpd::eval {

// Metrics: sacrebleu, bleu (plain corpus BLEU), chrf, rouge_l, exact_match (best over an
// example's references), agreement (ROUGE-L against `agreement_refs`, the outputs of a
// reference run, e.g. the 16-bit model's). Throws pmpd::Error on an unknown metric or a
// missing agreement reference.
double score_metric(const std::string& metric, const std::vector<std::string>& hyps,
                    const std::vector<Example>& examples, const std::vector<std::string>* agreement_refs = nullptr);

bool is_known_metric(const std::string& metric);

}  // namespace pmpd::eval
