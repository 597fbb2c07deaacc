// The BPE merge loop shared by every tokenizer kind: start from a sequence of symbol
// ids and repeatedly merge the adjacent pair with the best (lowest) priority, leftmost
// first, until no pair can merge. Hugging Face BPE ranks pairs by their merge-list
// index; SentencePiece and llama2.c rank them by the merged piece's score.
#pragma once
#include <functional>
#include <optional>
#include <vector>

namespace pmpd {

struct MergeResult {
  double priority;  // lower merges first
  int merged_id;
};

using MergeRule = std::function<std::optional<MergeResult>(int left, int right)>;

// O(n log n) with a heap of candidate pairs, so long prompts without pre-tokenization
// (Llama's tokenizers have none) stay fast.
std::vector<int> bpe_merge(std::vector<int> symbols, const MergeRule& rule);

}  // namespace pmpd
