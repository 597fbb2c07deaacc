// tokenizer.json and SentencePiece tokenizer.model; a tokenizer that loads must also
// encode and decode text without failing.
#include "fuzz_common.h"
#include "tokenizer/sentencepiece_proto.h"
#include "tokenizer/tokenizer.h"

namespace {
void exercise(const pmpd::TokenizerData& d) {
  pmpd::Tokenizer tok(d);
  for (int id : tok.encode("Hello wörld, 123 \xF0\x9F\x98\x80!\n", true)) (void)tok.token_bytes(id);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string json = pmpd::fuzz::scratch("tokenizer.json"), model = pmpd::fuzz::scratch("tokenizer.model");
  pmpd::fuzz::write(json, data, size);
  pmpd::fuzz::expect_clean([&] { exercise(pmpd::load_tokenizer_json(json)); });
  pmpd::fuzz::write(model, data, size);
  pmpd::fuzz::expect_clean([&] { exercise(pmpd::load_sentencepiece_model(model)); });
  return 0;
}
