// Loaders that turn each tokenizer file format into TokenizerData.
#include <filesystem>

#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "io/llama2c.h"
#include "tokenizer/sentencepiece_proto.h"
#include "tokenizer/tokenizer.h"

namespace pmpd {

namespace fs = std::filesystem;

namespace {

bool json_mentions(const Json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"] == type) return true;
    for (auto& [k, v] : j.items())
      if (json_mentions(v, type)) return true;
  } else if (j.is_array()) {
    for (auto& v : j)
      if (json_mentions(v, type)) return true;
  }
  return false;
}

const Json* find_type(const Json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"] == type) return &j;
    for (auto& [k, v] : j.items())
      if (auto* r = find_type(v, type)) return r;
  } else if (j.is_array()) {
    for (auto& v : j)
      if (auto* r = find_type(v, type)) return r;
  }
  return nullptr;
}

std::string token_content(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

int id_of(const TokenizerData& d, const std::string& piece) {
  for (size_t i = 0; i < d.pieces.size(); ++i)
    if (d.pieces[i] == piece) return int(i);
  return -1;
}

}  // namespace

TokenizerData load_tokenizer_json(const std::string& path) {
  Json j = parse_json_file(path);
  TokenizerData d;
  d.source = path;
  PMPD_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), "{}: missing \"model\"", path);
  const Json& model = j["model"];
  std::string type = json_get_or<std::string>(model, "type", "BPE", path);
  PMPD_CHECK(type == "BPE", "{}: tokenizer model type {} is not supported (BPE only)", path, type);
  PMPD_CHECK(model.contains("vocab") && model["vocab"].is_object(), "{}: missing model.vocab", path);
  const Json& vocab = model["vocab"];
  size_t n = 0;
  for (auto& [piece, id] : vocab.items()) {
    PMPD_CHECK(id.is_number_unsigned() && id.get<uint64_t>() < (1u << 24), "{}: bad id for token {}", path, piece);
    n = std::max<size_t>(n, id.get<size_t>() + 1);
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (auto& t : j["added_tokens"]) {
      PMPD_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_unsigned() && t["id"].get<uint64_t>() < (1u << 24),
                 "{}: bad entry in added_tokens", path);
      n = std::max<size_t>(n, t["id"].get<size_t>() + 1);
    }
  d.pieces.assign(n, "");
  d.types.assign(n, kNormal);
  std::vector<bool> seen(n, false);
  for (auto& [piece, id] : vocab.items()) {
    d.pieces[id.get<size_t>()] = piece;
    seen[id.get<size_t>()] = true;
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (auto& t : j["added_tokens"]) {
      size_t id = t["id"].get<size_t>();
      std::string content = json_get<std::string>(t, "content", path + ": added_tokens");
      d.pieces[id] = content;
      seen[id] = true;
      bool special = json_get_or<bool>(t, "special", false, path);
      d.types[id] = special ? kControl : kUserDefined;
      d.split_tokens.push_back(content);
    }
  for (size_t i = 0; i < n; ++i)
    if (!seen[i]) d.types[i] = kUnused;
  if (model.contains("merges") && model["merges"].is_array()) {
    for (auto& m : model["merges"]) {
      if (m.is_string()) {
        std::string s = m.get<std::string>();
        size_t sp = s.find(' ');
        PMPD_CHECK(sp != std::string::npos, "{}: merge \"{}\" has no space", path, s);
        d.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else {
        PMPD_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                   "{}: bad merge entry {}", path, m.dump());
        d.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      }
    }
  }
  d.byte_fallback = json_get_or<bool>(model, "byte_fallback", false, path);
  if (model.contains("unk_token") && model["unk_token"].is_string())
    d.unk = id_of(d, model["unk_token"].get<std::string>());

  // Named (not temporaries): find_type() returns pointers into these.
  static const Json kNull;
  const Json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : kNull;
  const Json& norm = j.contains("normalizer") ? j["normalizer"] : kNull;
  const Json& post = j.contains("post_processor") ? j["post_processor"] : kNull;
  if (json_mentions(pre, "ByteLevel")) {
    d.kind = TokenizerKind::ByteLevel;
    const Json* bl = find_type(pre, "ByteLevel");
    PMPD_CHECK(!json_get_or<bool>(*bl, "add_prefix_space", false, path),
               "{}: ByteLevel add_prefix_space=true is not supported", path);
    PMPD_CHECK(json_get_or<bool>(*bl, "use_regex", true, path) || json_mentions(pre, "Split") == false,
               "{}: custom Split pre-tokenizers are not supported (GPT-2 pattern only)", path);
    d.add_dummy_prefix = false;
    d.byte_fallback = false;
  } else {
    d.kind = TokenizerKind::SentencePiece;
    if (const Json* ms = find_type(pre, "Metaspace")) {
      std::string scheme = json_get_or<std::string>(*ms, "prepend_scheme", "", path);
      if (scheme.empty()) scheme = json_get_or<bool>(*ms, "add_prefix_space", true, path) ? "always" : "never";
      d.add_dummy_prefix = scheme != "never";
      d.dummy_prefix_every_segment = scheme == "always";
    } else {
      d.add_dummy_prefix = json_mentions(norm, "Prepend");
      d.dummy_prefix_every_segment = true;
      PMPD_CHECK(json_mentions(norm, "Replace") || pre.is_null(),
                 "{}: unsupported tokenizer layout (neither byte-level nor SentencePiece-style)", path);
    }
  }
  // BOS from the post-processor template, as transformers applies it.
  if (const Json* tp = find_type(post, "TemplateProcessing")) {
    if (tp->contains("single") && (*tp)["single"].is_array() && !(*tp)["single"].empty()) {
      const Json& first = (*tp)["single"][0];
      if (first.contains("SpecialToken")) {
        d.bos = id_of(d, json_get<std::string>(first["SpecialToken"], "id", path));
        d.add_bos = d.bos >= 0;
      }
    }
  }
  return d;
}

TokenizerData load_sentencepiece_model(const std::string& path) {
  auto file = MappedFile::open(path);
  SentencePieceModel m = parse_sentencepiece_model(file->view(), path);
  PMPD_CHECK(m.model_type == 2, "{}: SentencePiece model type {} is not supported (BPE only)", path,
             m.model_type == 1 ? "unigram" : std::to_string(m.model_type));
  TokenizerData d;
  d.source = path;
  d.kind = TokenizerKind::SentencePiece;
  for (auto& p : m.pieces) {
    d.pieces.push_back(p.piece);
    d.scores.push_back(p.score);
    d.types.push_back(p.type);
    if (p.type == kUserDefined) d.split_tokens.push_back(p.piece);
  }
  const int V = int(d.pieces.size());
  auto valid = [V](int id) { return id >= 0 && id < V ? id : -1; };
  d.unk = valid(m.unk_id), d.bos = valid(m.bos_id), d.eos = valid(m.eos_id), d.pad = valid(m.pad_id);
  d.add_bos = d.bos >= 0;
  d.byte_fallback = m.byte_fallback;
  d.add_dummy_prefix = m.add_dummy_prefix;
  d.remove_extra_whitespaces = m.remove_extra_whitespaces;
  PMPD_CHECK(m.normalizer_name.empty() || m.normalizer_name == "identity",
             "{}: SentencePiece normalizer \"{}\" is not supported (identity only)", path, m.normalizer_name);
  return d;
}

TokenizerData load_llama2c_tokenizer(const std::string& path, int vocab_size) {
  Llama2cVocab v = read_llama2c_tokenizer(path, vocab_size);
  TokenizerData d;
  d.source = path;
  d.kind = TokenizerKind::SentencePiece;
  d.scores = std::move(v.scores);
  // llama2.c stores spaces as ' ' rather than U+2581; put the mark back.
  for (auto& p : v.pieces) {
    std::string s;
    for (char c : p) s += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
    d.pieces.push_back(std::move(s));
  }
  d.types.assign(d.pieces.size(), kNormal);
  for (int i = 0; i < 3 && i < int(d.pieces.size()); ++i) d.types[i] = kControl;
  for (size_t i = 0; i < d.pieces.size(); ++i)
    if (d.pieces[i].size() == 6 && d.pieces[i].rfind("<0x", 0) == 0) d.types[i] = kByte;
  d.unk = 0, d.bos = 1, d.eos = 2;
  d.types[0] = kUnknown;
  d.add_bos = true;
  return d;
}

TokenizerData load_hf_tokenizer(const std::string& dir) {
  fs::path p(dir);
  TokenizerData d;
  if (fs::exists(p / "tokenizer.json")) d = load_tokenizer_json((p / "tokenizer.json").string());
  else if (fs::exists(p / "tokenizer.model")) d = load_sentencepiece_model((p / "tokenizer.model").string());
  else fail("{}: no tokenizer.json or tokenizer.model", dir);

  if (fs::exists(p / "tokenizer_config.json")) {
    std::string cfg_path = (p / "tokenizer_config.json").string();
    Json cfg = parse_json_file(cfg_path);
    if (cfg.contains("bos_token")) {
      int id = id_of(d, token_content(cfg["bos_token"]));
      if (id >= 0) d.bos = id;
    }
    if (cfg.contains("eos_token")) {
      int id = id_of(d, token_content(cfg["eos_token"]));
      if (id >= 0) d.eos = id;
    }
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
      d.add_bos = cfg["add_bos_token"].get<bool>() && d.bos >= 0;
    if (cfg.contains("chat_template")) {
      const Json& t = cfg["chat_template"];
      if (t.is_string()) d.chat_template = t.get<std::string>();
      else if (t.is_array() && !t.empty()) d.chat_template = json_get_or<std::string>(t[0], "template", "", cfg_path);
    }
  }
  if (fs::exists(p / "generation_config.json")) {
    std::string gpath = (p / "generation_config.json").string();
    Json g = parse_json_file(gpath);
    auto first_id = [](const Json& v) { return v.is_number_integer() ? v.get<int>() : v.is_array() && !v.empty() && v[0].is_number_integer() ? v[0].get<int>() : -1; };
    if (g.contains("bos_token_id") && first_id(g["bos_token_id"]) >= 0) d.bos = first_id(g["bos_token_id"]);
    if (g.contains("eos_token_id") && first_id(g["eos_token_id"]) >= 0) d.eos = first_id(g["eos_token_id"]);
  }
  return d;
}

}  // namespace pmpd
