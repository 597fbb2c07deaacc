// The tokenizer inside a GGUF file's metadata (tokenizer.ggml.* keys, as llama.cpp
// writes them, plus a few tokenizer.pmpd.* keys that make our round trip exact).
#pragma once
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pmpd {

TokenizerData tokenizer_from_gguf(const GgufFile& g);
void tokenizer_to_gguf(const TokenizerData& d, GgufWriter& w);

}  // namespace pmpd
