// GPT-2's pre-tokenizer pattern, written out by hand so no regex engine is needed:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
#pragma once
#include <string_view>
#include <vector>

namespace pmpd {

std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

}  // namespace pmpd
