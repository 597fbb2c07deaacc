// pmpd's forward pass against PyTorch references computed on the GPU machine by
// tools/make_reference_fixtures.py: random-weight transformers checkpoints of each
// architecture and the real llama2.c checkpoint stories260K.
#include <omp.h>

#include <algorithm>

#include "decode/generator.h"
#include "kernels/cpu/dot.h"
#include "model/gguf_export.h"
#include "test_util.h"

namespace pmpd {
namespace {

struct Reference {
  std::vector<int> prompt, generated;
  std::vector<std::vector<float>> logits;  // last prompt position, then each step
};

Reference load_reference(const std::string& path) {
  Json j = parse_json_file(path);
  Reference r;
  r.prompt = j["prompt_ids"].get<std::vector<int>>();
  r.generated = j["generated_ids"].get<std::vector<int>>();
  r.logits = j["logits"].get<std::vector<std::vector<float>>>();
  return r;
}

// Teacher-forced: feeds the reference tokens so every step's logits are comparable,
// returns the worst relative error over all steps.
double max_step_error(const Model& m, const Reference& ref) {
  Transformer tf(m);
  KVCache cache(m.config, int(ref.prompt.size() + ref.generated.size()), /*f16=*/false);
  std::vector<float> logits(size_t(m.config.vocab_size));
  tf.forward(ref.prompt.data(), int(ref.prompt.size()), cache, logits.data());
  double worst = test::rel_error(logits, ref.logits[0]);
  for (size_t i = 0; i + 1 < ref.logits.size(); ++i) {
    tf.forward(&ref.generated[i], 1, cache, logits.data());
    worst = std::max(worst, test::rel_error(logits, ref.logits[i + 1]));
  }
  return worst;
}

std::vector<int> greedy(const Model& m, const std::vector<int>& prompt, int n) {
  Transformer tf(m);
  GenerateOptions opt;
  opt.max_new_tokens = n;
  opt.stop_at_eos = false;
  opt.kv_f16 = false;
  return generate(tf, prompt, opt).tokens;
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, LogitsAndGreedyIdsMatchTransformers) {
  const std::string arch = GetParam();
  auto m = load_model(test::fixture(arch));
  Reference ref = load_reference(test::fixture(arch + "_reference.json"));
  ASSERT_GE(ref.prompt.size(), 32u);
  ASSERT_GE(ref.generated.size(), 16u);
  for (auto isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512}) {
    kernels::set_isa(isa);
    EXPECT_LT(max_step_error(*m, ref), 1e-4) << arch << " isa " << kernels::isa_name(kernels::active_isa());
  }
  kernels::set_isa(kernels::Isa::Avx512);
  EXPECT_EQ(greedy(*m, ref.prompt, int(ref.generated.size())), ref.generated);
}

TEST_P(ReferenceTest, GgufRoundTripGivesSameResults) {
  const std::string arch = GetParam();
  auto st = load_model(test::fixture(arch));
  test::TempDir dir;
  const std::string gguf = dir.file(arch + ".gguf");
  export_gguf(*st, gguf);
  auto gg = load_model(gguf);
  EXPECT_EQ(gg->format, "gguf");
  EXPECT_EQ(gg->config.n_layers, st->config.n_layers);
  Reference ref = load_reference(test::fixture(arch + "_reference.json"));
  EXPECT_LT(max_step_error(*gg, ref), 1e-4);
  EXPECT_EQ(greedy(*gg, ref.prompt, 16), greedy(*st, ref.prompt, 16));
  // The embedded tokenizer encodes like the original.
  ASSERT_TRUE(gg->tokenizer && st->tokenizer);
  Tokenizer a(*st->tokenizer), b(*gg->tokenizer);
  const std::string text = "Zwei Hunde spielen im Schnee 😀 \n  ok";
  EXPECT_EQ(a.encode(text, true), b.encode(text, true));
}

INSTANTIATE_TEST_SUITE_P(Architectures, ReferenceTest, ::testing::Values("llama", "phi", "stablelm"));

TEST(Stories260K, LogitsAndGreedyIdsMatchPyTorchPortOfLlama2c) {
  const std::string path = test::shared_path("models/stories260K/stories260K.bin");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  auto m = load_model(path);
  Reference ref = load_reference(test::fixture("stories260K_reference.json"));
  EXPECT_LT(max_step_error(*m, ref), 1e-4);
  EXPECT_EQ(greedy(*m, ref.prompt, int(ref.generated.size())), ref.generated);
  // llama2.c -> GGUF -> same tokens.
  test::TempDir dir;
  export_gguf(*m, dir.file("s.gguf"), DType::F32);
  auto g = load_model(dir.file("s.gguf"));
  EXPECT_EQ(greedy(*g, ref.prompt, int(ref.generated.size())), ref.generated);
}

TEST(KVCache, F16CacheStaysCloseToF32) {
  auto m = load_model(test::fixture("llama"));
  Reference ref = load_reference(test::fixture("llama_reference.json"));
  Transformer tf(*m);
  KVCache cache(m->config, 64, /*f16=*/true);
  std::vector<float> logits(size_t(m->config.vocab_size));
  tf.forward(ref.prompt.data(), int(ref.prompt.size()), cache, logits.data());
  EXPECT_LT(test::rel_error(logits, ref.logits[0]), 5e-3);
}

TEST(Forward, BatchedPrefillEqualsTokenByToken) {
  auto m = load_model(test::fixture("stablelm"));
  Reference ref = load_reference(test::fixture("stablelm_reference.json"));
  Transformer tf(*m);
  KVCache a(m->config, 64, false), b(m->config, 64, false);
  std::vector<float> la(size_t(m->config.vocab_size)), lb(la.size());
  tf.forward(ref.prompt.data(), int(ref.prompt.size()), a, la.data());
  for (int t : ref.prompt) tf.forward(&t, 1, b, lb.data());
  EXPECT_LT(test::rel_error(la, lb), 1e-5);
}

// On the f16 cache a prompt's attention runs the decode step's kernel query by query, and its
// products the decode's arithmetic in tiles: a batched prompt gives the logits of feeding the
// tokens one at a time bit for bit (the llama fixture: grouped heads of 16).
TEST(Forward, BatchedPrefillOnTheF16CacheEqualsTokenByTokenBitForBit) {
  auto m = load_model(test::fixture("llama"));
  Reference ref = load_reference(test::fixture("llama_reference.json"));
  Transformer tf(*m);
  const int n = int(ref.prompt.size());
  KVCache a(m->config, 64, true), b(m->config, 64, true);
  std::vector<float> all(size_t(n) * size_t(m->config.vocab_size)), one(size_t(m->config.vocab_size));
  tf.forward(ref.prompt.data(), n, a, all.data(), /*all_logits=*/true);
  for (int t = 0; t < n; ++t) {
    tf.forward(&ref.prompt[size_t(t)], 1, b, one.data());
    for (size_t i = 0; i < one.size(); ++i)
      ASSERT_EQ(one[i], all[size_t(t) * one.size() + i]) << "position " << t << " logit " << i;
  }
}

// A decode step's attention over the f16 cache, grouped heads (the llama fixture: 4 query
// heads on 2 KV heads) split over a team of 4 threads (2 parts a group) against one thread:
// the same logits, bit for bit, every step.
TEST(Forward, GroupedDecodeAttentionOnATeamEqualsOneThread) {
  auto m = load_model(test::fixture("llama"));
  ASSERT_LT(m->config.n_kv_heads, m->config.n_heads);
  Reference ref = load_reference(test::fixture("llama_reference.json"));
  const size_t bound = kernels::min_parallel_bytes();
  const int threads_before = omp_get_max_threads();
  kernels::set_min_parallel_bytes(0);  // a team for every step, however short the cache
  auto steps = [&](int threads) {
    omp_set_num_threads(threads);
    Transformer tf(*m);
    KVCache cache(m->config, int(ref.prompt.size()) + 64, /*f16=*/true);
    std::vector<float> logits(size_t(m->config.vocab_size)), all;
    tf.forward(ref.prompt.data(), int(ref.prompt.size()), cache, logits.data());
    for (int step = 0; step < 60; ++step) {
      int next = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
      tf.forward(&next, 1, cache, logits.data());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  };
  const std::vector<float> team = steps(4), one = steps(1);
  omp_set_num_threads(threads_before);
  kernels::set_min_parallel_bytes(bound);
  ASSERT_EQ(team.size(), one.size());
  for (size_t i = 0; i < team.size(); ++i) ASSERT_EQ(team[i], one[i]) << "logit " << i;
}

}  // namespace
}  // namespace pmpd
