#include "tokenizer/gguf_tokenizer.h"

#include "core/error.h"

namespace pmpd {

namespace {

std::vector<std::string> strings(const GgufFile& g, const std::string& key) {
  std::vector<std::string> out;
  if (auto* v = g.find(key)) {
    PMPD_CHECK(v->type == GgufType::Array && v->elem_type == GgufType::String, "{}: {} is not a string array",
               g.tensors.source, key);
    for (auto& s : v->as_array()) out.push_back(s.as_string());
  }
  return out;
}

int int_or(const GgufFile& g, const std::string& key, int fallback) {
  auto* v = g.find(key);
  return v && v->is_int() ? int(v->as_int()) : fallback;
}

bool bool_or(const GgufFile& g, const std::string& key, bool fallback) {
  auto* v = g.find(key);
  if (!v) return fallback;
  if (auto* b = std::get_if<bool>(&v->v)) return *b;
  return v->is_int() ? v->as_int() != 0 : fallback;
}

}  // namespace

TokenizerData tokenizer_from_gguf(const GgufFile& g) {
  const std::string& src = g.tensors.source;
  auto* model = g.find("tokenizer.ggml.model");
  PMPD_CHECK(model, "{}: no tokenizer in the GGUF metadata (tokenizer.ggml.model missing)", src);
  TokenizerData d;
  d.source = src;
  const std::string& kind = model->as_string();
  if (kind == "llama") d.kind = TokenizerKind::SentencePiece;
  else if (kind == "gpt2") d.kind = TokenizerKind::ByteLevel;
  else fail("{}: tokenizer model \"{}\" is not supported (llama, gpt2)", src, kind);
  d.pieces = strings(g, "tokenizer.ggml.tokens");
  PMPD_CHECK(!d.pieces.empty(), "{}: tokenizer.ggml.tokens missing or empty", src);
  if (auto* s = g.find("tokenizer.ggml.scores"))
    for (auto& v : s->as_array()) d.scores.push_back(float(v.as_float()));
  if (auto* t = g.find("tokenizer.ggml.token_type"))
    for (auto& v : t->as_array()) d.types.push_back(int(v.as_int()));
  for (auto& m : strings(g, "tokenizer.ggml.merges")) {
    size_t sp = m.find(' ');
    PMPD_CHECK(sp != std::string::npos, "{}: merge \"{}\" has no space", src, m);
    d.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  PMPD_CHECK(d.kind == TokenizerKind::SentencePiece ? (!d.scores.empty() || !d.merges.empty()) : !d.merges.empty(),
             "{}: tokenizer has neither scores nor merges", src);
  d.bos = int_or(g, "tokenizer.ggml.bos_token_id", -1);
  d.eos = int_or(g, "tokenizer.ggml.eos_token_id", -1);
  d.unk = int_or(g, "tokenizer.ggml.unknown_token_id", -1);
  d.pad = int_or(g, "tokenizer.ggml.padding_token_id", -1);
  d.add_bos = bool_or(g, "tokenizer.ggml.add_bos_token", d.kind == TokenizerKind::SentencePiece);
  if (auto* t = g.find("tokenizer.chat_template")) d.chat_template = t->as_string();
  bool spm = d.kind == TokenizerKind::SentencePiece;
  d.add_dummy_prefix = bool_or(g, "tokenizer.pmpd.add_dummy_prefix", spm);
  d.dummy_prefix_every_segment = bool_or(g, "tokenizer.pmpd.dummy_prefix_every_segment", true);
  d.byte_fallback = bool_or(g, "tokenizer.pmpd.byte_fallback", spm);
  d.remove_extra_whitespaces = bool_or(g, "tokenizer.pmpd.remove_extra_whitespaces", false);
  if (g.find("tokenizer.pmpd.split_tokens")) {
    d.split_tokens = strings(g, "tokenizer.pmpd.split_tokens");
  } else {
    for (size_t i = 0; i < d.types.size() && i < d.pieces.size(); ++i)
      if (d.types[i] == kControl || d.types[i] == kUserDefined) d.split_tokens.push_back(d.pieces[i]);
  }
  return d;
}

void tokenizer_to_gguf(const TokenizerData& d, GgufWriter& w) {
  bool spm = d.kind == TokenizerKind::SentencePiece;
  w.set_string("tokenizer.ggml.model", spm ? "llama" : "gpt2");
  w.set_array_string("tokenizer.ggml.tokens", d.pieces);
  if (!d.scores.empty()) w.set_array_f32("tokenizer.ggml.scores", d.scores);
  std::vector<int32_t> types(d.types.begin(), d.types.end());
  if (types.empty()) types.assign(d.pieces.size(), kNormal);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  if (!d.merges.empty()) {
    std::vector<std::string> merges;
    for (auto& [a, b] : d.merges) merges.push_back(a + " " + b);
    w.set_array_string("tokenizer.ggml.merges", merges);
  }
  if (d.bos >= 0) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(d.bos));
  if (d.eos >= 0) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(d.eos));
  if (d.unk >= 0) w.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(d.unk));
  if (d.pad >= 0) w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(d.pad));
  w.set_bool("tokenizer.ggml.add_bos_token", d.add_bos);
  if (!d.chat_template.empty()) w.set_string("tokenizer.chat_template", d.chat_template);
  w.set_bool("tokenizer.pmpd.add_dummy_prefix", d.add_dummy_prefix);
  w.set_bool("tokenizer.pmpd.dummy_prefix_every_segment", d.dummy_prefix_every_segment);
  w.set_bool("tokenizer.pmpd.byte_fallback", d.byte_fallback);
  w.set_bool("tokenizer.pmpd.remove_extra_whitespaces", d.remove_extra_whitespaces);
  w.set_array_string("tokenizer.pmpd.split_tokens", d.split_tokens);
}

}  // namespace pmpd
