// ROUGE-L F1 as Google's rouge-score computes it by default: lower-case, every run of
// characters outside [a-z0-9] is a separator, no stemming; F1 of the longest common
// subsequence's precision and recall.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace pmpd::eval {

std::vector<std::string> rouge_tokenize(std::string_view text);
double rouge_l_f1(std::string_view candidate, std::string_view reference);
size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b);

}  // namespace pmpd::eval
