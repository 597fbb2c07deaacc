// ROUGE-L with rouge-score's default tokenization, on hand-computed cases (reference values
// from rouge-score itself come with the evaluation harness).
#include "eval/rouge.h"
#include "test_util.h"

namespace pmpd {
namespace {

TEST(RougeL, TokenizesLikeRougeScore) {
  EXPECT_EQ(eval::rouge_tokenize("The Cat-sat, on 2 mats!"), (std::vector<std::string>{"the", "cat", "sat", "on", "2", "mats"}));
  EXPECT_EQ(eval::rouge_tokenize("Größe über"), (std::vector<std::string>{"gr", "e", "ber"}));
  EXPECT_TRUE(eval::rouge_tokenize("...").empty());
}

TEST(RougeL, F1OfLongestCommonSubsequence) {
  // LCS("the cat sat on the mat", "the cat is on the mat") = 5 of 6 and 6 tokens.
  EXPECT_NEAR(eval::rouge_l_f1("the cat sat on the mat", "the cat is on the mat"), 5.0 / 6.0, 1e-12);
  // candidate 3 tokens, reference 5, LCS 2: P=2/3, R=2/5, F=0.5
  EXPECT_NEAR(eval::rouge_l_f1("a b c", "a x b y z"), 0.5, 1e-12);
  EXPECT_EQ(eval::rouge_l_f1("", "a b"), 0.0);
  EXPECT_EQ(eval::rouge_l_f1("a", "b"), 0.0);
  EXPECT_EQ(eval::rouge_l_f1("Same text.", "same TEXT"), 1.0);
}

}  // namespace
}  // namespace pmpd
