// Token ids equal those of transformers (tokenizer.json) and sentencepiece
// (tokenizer.model) on a committed set of strings; see tools/tokenizer_strings.json.
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "test_util.h"

namespace pmpd {
namespace {

void expect_ids(const Tokenizer& tok, const std::string& key) {
  Json j = parse_json_file(test::fixture("tokenizer_ids.json"));
  auto strings = j["strings"].get<std::vector<std::string>>();
  auto ids = j[key].get<std::vector<std::vector<int>>>();
  ASSERT_EQ(strings.size(), ids.size());
  for (size_t i = 0; i < strings.size(); ++i) EXPECT_EQ(tok.encode(strings[i], false), ids[i]) << key << ": \"" << strings[i] << "\"";
}

TEST(Tokenizer, SentencePieceStyleTokenizerJsonMatchesTransformers) {
  expect_ids(Tokenizer(load_tokenizer_json(test::fixture("tok_spm_json/tokenizer.json"))), "tok_spm_json");
}

TEST(Tokenizer, ByteLevelTokenizerJsonMatchesTransformers) {
  expect_ids(Tokenizer(load_tokenizer_json(test::fixture("tok_bytelevel/tokenizer.json"))), "tok_bytelevel");
}

TEST(Tokenizer, SentencePieceModelMatchesSentencepiece) {
  expect_ids(Tokenizer(load_sentencepiece_model(test::fixture("tok_spm_model/tokenizer.model"))), "tok_spm_model");
}

TEST(Tokenizer, DecodeInvertsEncode) {
  Json j = parse_json_file(test::fixture("tokenizer_ids.json"));
  Tokenizer bl(load_tokenizer_json(test::fixture("tok_bytelevel/tokenizer.json")));
  Tokenizer spm(load_sentencepiece_model(test::fixture("tok_spm_model/tokenizer.model")));
  for (auto& s : j["strings"].get<std::vector<std::string>>()) {
    EXPECT_EQ(bl.decode(bl.encode(s, false)), s);
    std::string round = spm.decode(spm.encode(s, false));
    EXPECT_EQ(round, s);
  }
}

TEST(Tokenizer, HfDirectoryAppliesConfigAndAddsBos) {
  Tokenizer tok(load_hf_tokenizer(test::fixture("llama")));
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  auto ids = tok.encode("Hello", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
}

TEST(Tokenizer, InvalidUtf8IsAnError) {
  Tokenizer tok(load_tokenizer_json(test::fixture("tok_bytelevel/tokenizer.json")));
  EXPECT_THROW(tok.encode("abc\xff", false), Error);
  EXPECT_THROW(tok.encode("\xc3", false), Error);
  EXPECT_THROW(tok.encode("\xed\xa0\x80", false), Error);  // surrogate
}

TEST(Tokenizer, StreamDecoderHoldsBackPartialCharacters) {
  Tokenizer tok(load_tokenizer_json(test::fixture("tok_bytelevel/tokenizer.json")));
  const std::string text = "Größe 😀 日本";
  auto ids = tok.encode(text, false);
  StreamDecoder dec(tok);
  std::string out;
  for (int id : ids) {
    std::string piece = dec.push(id);
    EXPECT_EQ(utf8::find_invalid(piece), std::string::npos);
    out += piece;
  }
  out += dec.flush();
  EXPECT_EQ(out, text);
}

TEST(ChatTemplate, RendersAndDetectsFamilies) {
  std::vector<ChatMessage> msgs = {{"user", "Hi"}};
  EXPECT_EQ(render_chat(ChatTemplate::ChatML, msgs), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(ChatTemplate::Zephyr, msgs), "<|user|>\nHi</s>\n<|assistant|>\n");
  EXPECT_EQ(render_chat(ChatTemplate::Llama2, msgs), "[INST] Hi [/INST]");
  EXPECT_NE(render_chat(ChatTemplate::Vicuna, msgs).find("USER: Hi ASSISTANT:"), std::string::npos);
  EXPECT_EQ(detect_chat_template("{% for m in messages %}<|im_start|>{{m.role}}"), ChatTemplate::ChatML);
  EXPECT_EQ(detect_chat_template("<|user|>\n ... <|assistant|>"), ChatTemplate::Zephyr);
  EXPECT_THROW(chat_template_from_name("nope"), Error);
}

}  // namespace
}  // namespace pmpd
