// The project's own models (models/pmpd-*) load and generate in pmpd token for token
// as in PyTorch: greedy ids recorded by tools/train_model.py from the saved checkpoint
// loaded in f32 (models/<name>/training.json, "greedy_references").
#include "decode/generator.h"
#include "test_util.h"

namespace pmpd {
namespace {

class OwnModel : public ::testing::TestWithParam<std::string> {};

TEST_P(OwnModel, TokenizesAndGeneratesLikePyTorch) {
  const std::string dir = test::source_dir() + "/models/" + GetParam();
  auto m = load_model(dir);
  ASSERT_TRUE(m->tokenizer);
  Tokenizer tok(*m->tokenizer);
  Json card = parse_json_file(dir + "/training.json");
  ASSERT_GE(card["greedy_references"].size(), 3u);
  Transformer tf(*m);
  for (auto& ref : card["greedy_references"]) {
    const std::string prompt = ref["prompt"];
    EXPECT_EQ(tok.encode(prompt, true), ref["prompt_ids"].get<std::vector<int>>()) << prompt;
    for (bool f16 : {false, true}) {
      GenerateOptions opt;
      opt.max_new_tokens = 32;
      opt.eos = tok.eos();
      opt.kv_f16 = f16;
      auto r = generate(tf, ref["prompt_ids"].get<std::vector<int>>(), opt);
      // both stop right after emitting EOS, which both include in the ids
      EXPECT_EQ(r.tokens, ref["generated_ids"].get<std::vector<int>>()) << prompt << (f16 ? " (f16 KV)" : " (f32 KV)");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, OwnModel, ::testing::Values("pmpd-tiny", "pmpd-small"));

}  // namespace
}  // namespace pmpd
