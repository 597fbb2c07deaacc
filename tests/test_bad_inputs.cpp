// Bad input never crashes: every corrupt, truncated or mismatched file gives a
// pmpd::Error whose message names the file and the problem.
#include <cstring>

#include "decode/generator.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/gguf_export.h"
#include "test_util.h"

namespace pmpd {
namespace {

namespace fs = std::filesystem;

// Expects load_model(path) to throw an Error whose message contains every fragment.
void expect_load_error(const std::string& path, std::vector<std::string> fragments) {
  try {
    load_model(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "\"" << msg << "\" lacks \"" << f << "\"";
  }
}

// Copies the stablelm fixture and rewrites its safetensors header with `edit`.
std::string stablelm_with(test::TempDir& dir, const std::function<void(Json&)>& edit) {
  fs::copy(test::fixture("stablelm"), dir.str(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::string st = test::read_bytes(test::fixture("stablelm/model.safetensors"));
  uint64_t n;
  std::memcpy(&n, st.data(), 8);
  Json h = Json::parse(st.substr(8, n));
  edit(h);
  std::string hs = h.dump();
  hs.resize(n, ' ');  // keep the data offset: pad with spaces (valid JSON whitespace)
  EXPECT_EQ(hs.size(), n);
  st.replace(8, n, hs);
  test::write_bytes(dir.file("model.safetensors"), st);
  return dir.str();
}

TEST(BadInput, MissingPathsAndEmptyDirectories) {
  expect_load_error("/nonexistent/model", {"/nonexistent/model", "no such file"});
  test::TempDir dir;
  expect_load_error(dir.str(), {"config.json"});
}

TEST(BadInput, TruncatedAndCorruptSafetensors) {
  std::string st = test::read_bytes(test::fixture("stablelm/model.safetensors"));
  test::TempDir d1;
  fs::copy(test::fixture("stablelm"), d1.str(), fs::copy_options::recursive);
  test::write_bytes(d1.file("model.safetensors"), st.substr(0, st.size() / 2));
  expect_load_error(d1.str(), {"model.safetensors", "outside"});
  test::write_bytes(d1.file("model.safetensors"), st.substr(0, 5));
  expect_load_error(d1.str(), {"model.safetensors", "truncated"});
  std::string huge = st;
  uint64_t big = uint64_t(1) << 40;
  std::memcpy(huge.data(), &big, 8);
  test::write_bytes(d1.file("model.safetensors"), huge);
  expect_load_error(d1.str(), {"model.safetensors", "header length"});
  std::string garbage = st;
  garbage[9] = '#';
  test::write_bytes(d1.file("model.safetensors"), garbage);
  expect_load_error(d1.str(), {"model.safetensors", "JSON"});
}

TEST(BadInput, TensorWithWrongDtypeOrShape) {
  test::TempDir d1, d2, d3;
  expect_load_error(stablelm_with(d1, [](Json& h) { h["model.layers.0.self_attn.q_proj.weight"]["dtype"] = "I32"; }),
                    {"attn_q.weight", "I32"});
  expect_load_error(stablelm_with(d2, [](Json& h) {
                      auto& s = h["model.layers.1.mlp.up_proj.weight"]["shape"];
                      std::swap(s[0], s[1]);
                    }),
                    {"ffn_up.weight", "shape"});
  expect_load_error(stablelm_with(d3, [](Json& h) { h.erase("model.layers.1.mlp.down_proj.weight"); }),
                    {"blk.1.ffn_down.weight", "missing"});
}

TEST(BadInput, BadConfigJson) {
  auto with_config = [](test::TempDir& d, const std::function<void(Json&)>& edit) {
    fs::copy(test::fixture("stablelm"), d.str(), fs::copy_options::recursive);
    Json c = parse_json_file(test::fixture("stablelm/config.json"));
    edit(c);
    test::write_bytes(d.file("config.json"), c.dump());
    return d.str();
  };
  test::TempDir a, b, c, d, e;
  expect_load_error(with_config(a, [](Json& j) { j["model_type"] = "gpt_bigcode"; }), {"config.json", "gpt_bigcode"});
  expect_load_error(with_config(b, [](Json& j) { j.erase("hidden_size"); }), {"config.json", "hidden_size"});
  expect_load_error(with_config(c, [](Json& j) { j["num_attention_heads"] = "four"; }), {"num_attention_heads"});
  expect_load_error(with_config(d, [](Json& j) { j["hidden_size"] = 96; }), {"shape"});  // mismatched tensors
  test::write_bytes(with_config(e, [](Json&) {}) + "/config.json", "{ not json");
  expect_load_error(e.str(), {"config.json", "JSON"});
}

TEST(BadInput, CorruptGguf) {
  auto m = load_model(test::fixture("phi"));
  test::TempDir dir;
  export_gguf(*m, dir.file("ok.gguf"));
  std::string g = test::read_bytes(dir.file("ok.gguf"));
  auto variant = [&](const std::string& name, std::string bytes) {
    test::write_bytes(dir.file(name), bytes);
    return dir.file(name);
  };
  expect_load_error(variant("trunc.gguf", g.substr(0, g.size() / 3)), {"trunc.gguf"});
  expect_load_error(variant("short.gguf", g.substr(0, 30)), {"short.gguf", "corrupt GGUF header"});
  std::string v = g;
  v[4] = 9;  // version 9
  expect_load_error(variant("ver.gguf", v), {"ver.gguf", "version"});
  std::string counts = g;
  uint64_t n = uint64_t(1) << 60;
  std::memcpy(counts.data() + 8, &n, 8);  // 2^60 tensors
  expect_load_error(variant("count.gguf", counts), {"count.gguf", "corrupt"});
  std::string tail = g.substr(0, g.size() - 100);  // last tensor runs past the end
  expect_load_error(variant("tail.gguf", tail), {"tail.gguf", "outside the file"});
}

TEST(BadInput, CorruptLlama2c) {
  test::TempDir dir;
  test::write_bytes(dir.file("tiny.bin"), std::string(12, '\0'));
  expect_load_error(dir.file("tiny.bin"), {"tiny.bin"});
  int32_t hdr[7] = {64, 172, 5, 8, 4, 512, 512};
  std::string h(reinterpret_cast<char*>(hdr), 28);
  test::write_bytes(dir.file("trunc.bin"), h + std::string(1000, '\0'));
  expect_load_error(dir.file("trunc.bin"), {"trunc.bin", "truncated"});
  int32_t bad[7] = {64, 172, 5, 7, 4, 512, 512};  // 64 not divisible by 7 heads
  test::write_bytes(dir.file("heads.bin"), std::string(reinterpret_cast<char*>(bad), 28) + std::string(1000, '\0'));
  expect_load_error(dir.file("heads.bin"), {"heads.bin"});
  test::write_bytes(dir.file("text.bin"), std::string(4096, 'x'));
  expect_load_error(dir.file("text.bin"), {"text.bin", "implausible"});
  // Found by fuzz_llama2c: a vocab size of INT32_MIN (negating it overflowed).
  int32_t minvocab[7] = {64, 172, 5, 8, 4, INT32_MIN, 512};
  test::write_bytes(dir.file("minvocab.bin"), std::string(reinterpret_cast<char*>(minvocab), 28) + std::string(1000, '\0'));
  expect_load_error(dir.file("minvocab.bin"), {"minvocab.bin", "implausible"});
}

TEST(BadInput, BadTokenizerFiles) {
  test::TempDir dir;
  test::write_bytes(dir.file("tokenizer.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
  EXPECT_THROW(load_tokenizer_json(dir.file("tokenizer.json")), Error);
  test::write_bytes(dir.file("tokenizer.model"), "\x0a\xff\xff\xff\xff\x0f");
  EXPECT_THROW(load_sentencepiece_model(dir.file("tokenizer.model")), Error);
  test::write_bytes(dir.file("tokenizer.bin"), std::string("\x10\x00\x00\x00", 4));
  EXPECT_THROW(load_llama2c_tokenizer(dir.file("tokenizer.bin"), 512), Error);
}

TEST(BadInput, ContextLongerThanTheModel) {
  auto m = load_model(test::fixture("llama"));
  Transformer tf(*m);
  std::vector<int> prompt(200, 5);
  GenerateOptions opt;
  opt.max_new_tokens = 100;  // 300 > 256
  EXPECT_THROW(generate(tf, prompt, opt), Error);
  std::vector<int> bad = {1, 100000};
  opt.max_new_tokens = 1;
  EXPECT_THROW(generate(tf, bad, opt), Error);
}

}  // namespace
}  // namespace pmpd
