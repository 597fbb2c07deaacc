// ROUGE-L with rouge-score's default tokenization, on hand-computed cases (reference values
// from rouge-score itself come with the evaluation harness).
#include "eval/bleu.h"
#include "eval/rouge.h"
#include "test_util.h"

namespace pmpd {
namespace {

TEST(RougeL, TokenizesLikeRougeScore) {
  EXPECT_EQ(eval::rouge_tokenize("The Cat-sat, on 2 mats!"), (std::vector<std::string>{"the", "cat", "sat", "on", "2", "mats"}));
  EXPECT_EQ(eval::rouge_tokenize("Größe über"), (std::vector<std::string>{"gr", "e", "ber"}));
  EXPECT_TRUE(eval::rouge_tokenize("...").empty());
}

TEST(RougeL, F1OfLongestCommonSubsequence) {
  // LCS("the cat sat on the mat", "the cat is on the mat") = 5 of 6 and 6 tokens.
  EXPECT_NEAR(eval::rouge_l_f1("the cat sat on the mat", "the cat is on the mat"), 5.0 / 6.0, 1e-12);
  // candidate 3 tokens, reference 5, LCS 2: P=2/3, R=2/5, F=0.5
  EXPECT_NEAR(eval::rouge_l_f1("a b c", "a x b y z"), 0.5, 1e-12);
  EXPECT_EQ(eval::rouge_l_f1("", "a b"), 0.0);
  EXPECT_EQ(eval::rouge_l_f1("a", "b"), 0.0);
  EXPECT_EQ(eval::rouge_l_f1("Same text.", "same TEXT"), 1.0);
}

}  // namespace
}  // namespace pmpd

namespace pmpd {
namespace {

// Values computed by sacrebleu 2.6.0 (tools/metric_references.py on tools/metric_pairs.json).
struct MetricFixture {
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;
  Json ref;
  MetricFixture() {
    Json pairs = parse_json_file(test::source_dir() + "/tools/metric_pairs.json");
    hyps = pairs["hyps"].get<std::vector<std::string>>();
    refs = pairs["refs"].get<std::vector<std::vector<std::string>>>();
    ref = parse_json_file(test::fixture("metric_references.json"));
  }
};

TEST(SacreBleu, Tokenizer13aMatchesSacrebleu) {
  MetricFixture f;
  auto in = f.ref["tokenized_inputs"].get<std::vector<std::string>>();
  auto want = f.ref["tokenized_13a"].get<std::vector<std::string>>();
  ASSERT_EQ(in.size(), want.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(eval::tokenize_13a(in[i]), want[i]) << in[i];
}

TEST(SacreBleu, CorpusBleuMatchesSacrebleu) {
  MetricFixture f;
  auto check = [&](const eval::BleuScore& b, const Json& want) {
    EXPECT_NEAR(b.score, want["score"].get<double>(), 1e-9);
    auto p = want["precisions"].get<std::vector<double>>();
    for (int n = 0; n < 4; ++n) EXPECT_NEAR(b.precisions[n], p[size_t(n)], 1e-9);
    EXPECT_NEAR(b.brevity_penalty, want["bp"].get<double>(), 1e-12);
  };
  check(eval::corpus_bleu(f.hyps, f.refs), f.ref["sacrebleu_two_refs"]);
  auto one = eval::corpus_bleu(f.hyps, {f.refs[0]});
  check(one, f.ref["sacrebleu_one_ref"]);
  EXPECT_EQ(one.sys_len, f.ref["sacrebleu_one_ref"]["sys_len"].get<long long>());
  EXPECT_EQ(one.ref_len, f.ref["sacrebleu_one_ref"]["ref_len"].get<long long>());
  check(eval::corpus_bleu(f.hyps, {f.refs[0]}, eval::BleuTokenize::None, eval::BleuSmooth::None), f.ref["bleu_plain_one_ref"]);
}

TEST(SacreBleu, ChrFMatchesSacrebleu) {
  MetricFixture f;
  EXPECT_NEAR(eval::corpus_chrf(f.hyps, f.refs), f.ref["chrf_two_refs"].get<double>(), 1e-9);
  EXPECT_NEAR(eval::corpus_chrf(f.hyps, {f.refs[0]}), f.ref["chrf_one_ref"].get<double>(), 1e-9);
  auto per = f.ref["chrf_per_sentence"].get<std::vector<double>>();
  for (size_t i = 0; i < f.hyps.size(); ++i)
    EXPECT_NEAR(eval::corpus_chrf({f.hyps[i]}, {{f.refs[0][i]}}), per[i], 1e-9) << f.hyps[i];
  // The example of the Hugging Face chrF metric card (computed there with sacrebleu).
  EXPECT_NEAR(eval::corpus_chrf({"The relationship between Obama and Netanyahu is not exactly friendly."},
                                {{"The ties between Obama and Netanyahu are not particularly friendly."}}),
              61.576379378113785, 1e-9);
}

TEST(SacreBleu, MismatchedStreamsAreErrors) {
  EXPECT_THROW(eval::corpus_bleu({"a", "b"}, {{"a"}}), Error);
  EXPECT_THROW(eval::corpus_chrf({"a"}, {}), Error);
}

}  // namespace
}  // namespace pmpd

#include "eval/task.h"

namespace pmpd {
namespace {

TEST(Tasks, ShippedTaskFilesLoad) {
  for (const char* t : {"multi30k-de-en", "wordnet-define", "dialogsum", "cnn-dailymail", "iwslt-de-en", "continuation"}) {
    auto task = eval::load_task(test::source_dir() + "/tasks/" + t + ".json");
    EXPECT_FALSE(task.metrics.empty()) << t;
    EXPECT_TRUE(task.data.count("test")) << t;
  }
}

TEST(Tasks, DialogSumTestHasThreeReferences) {
  auto task = eval::load_task(test::source_dir() + "/tasks/dialogsum.json");
  if (!std::filesystem::exists(task.data.at("test"))) GTEST_SKIP() << "no ../shared/data";
  auto ex = eval::load_examples(task, "test", 3);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].references.size(), 3u);
  EXPECT_NE(ex[0].prompt.find("#Person1#"), std::string::npos);
  auto dev = eval::load_examples(task, "calibration", 2);
  EXPECT_EQ(dev[0].references.size(), 1u);
}

TEST(Tasks, TemplatesNestedFieldsAndContinuation) {
  test::TempDir d;
  test::write_bytes(d.file("t.json"), R"({"data": {"test": "x.jsonl"}, "prompt": "DE: {translation.de}\nEN:\n",
      "reference": "translation.en", "metrics": ["sacrebleu"]})");
  test::write_bytes(d.file("x.jsonl"), "{\"translation\": {\"de\": \"Hallo\", \"en\": \"Hello\"}}\n\n");
  auto ex = eval::load_examples(eval::load_task(d.file("t.json")), "test", 0);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].prompt, "DE: Hallo\nEN:\n");
  EXPECT_EQ(ex[0].references, std::vector<std::string>{"Hello"});
  test::write_bytes(d.file("c.json"), R"({"data": {"test": "y.jsonl"}, "continuation": {"field": "text", "prompt_words": 2}})");
  test::write_bytes(d.file("y.jsonl"), "{\"text\": \"one two three four\"}\n");
  auto c = eval::load_examples(eval::load_task(d.file("c.json")), "test", 0);
  EXPECT_EQ(c[0].prompt, "one two");
  EXPECT_EQ(c[0].references, std::vector<std::string>{"three four"});
}

TEST(Tasks, BadTasksAndDataNameFileAndLine) {
  test::TempDir d;
  auto expect_error = [](const std::function<void()>& f, const std::string& frag) {
    try {
      f();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
    }
  };
  test::write_bytes(d.file("a.json"), R"({"prompt": "x", "reference": "y"})");
  expect_error([&] { eval::load_task(d.file("a.json")); }, "a.json: \"data\"");
  test::write_bytes(d.file("b.json"), R"({"data": {"test": "d.jsonl"}, "prompt": "{src}", "reference": "ref", "metrics": ["bertscore"]})");
  expect_error([&] { eval::load_task(d.file("b.json")); }, "unknown metric");
  test::write_bytes(d.file("c.json"), R"({"data": {"test": "d.jsonl"}, "prompt": "{src}", "reference": "ref"})");
  test::write_bytes(d.file("d.jsonl"), "{\"src\": \"a\", \"ref\": \"b\"}\n{\"src\": \"a\"}\n");
  expect_error([&] { eval::load_examples(eval::load_task(d.file("c.json")), "test", 0); }, "d.jsonl:2: empty or missing reference");
  test::write_bytes(d.file("d.jsonl"), "{\"src\": \"a\", \"ref\": \"b\"}\nnot json\n");
  expect_error([&] { eval::load_examples(eval::load_task(d.file("c.json")), "test", 0); }, "d.jsonl:2: not valid JSON");
  test::write_bytes(d.file("d.jsonl"), "{\"ref\": \"b\"}\n");
  expect_error([&] { eval::load_examples(eval::load_task(d.file("c.json")), "test", 0); }, "d.jsonl:1: field \"src\" missing");
  expect_error([&] { eval::load_examples(eval::load_task(d.file("c.json")), "calibration", 0); }, "no data for split");
  expect_error([&] { eval::load_examples(eval::load_task(d.file("c.json")), "test", 0, d.file("none.jsonl")); }, "cannot open");
}

}  // namespace
}  // namespace pmpd
