#include <algorithm>
// Precision schedules, schedulers and progressive mixed-precision generation.
#include <malloc.h>

#include "decode/generator.h"
#include "quant/quantize_model.h"
#include "sched/scheduler.h"
#include "test_util.h"

namespace pmpd {
namespace {

TEST(Schedule, StepFunctionAndPresets) {
  auto s = parse_schedule("4:32,3:96,2", 256, 0);
  EXPECT_EQ(s.prefill_bits, 4);
  EXPECT_EQ(s.bits_at(0), 4);
  EXPECT_EQ(s.bits_at(31), 4);
  EXPECT_EQ(s.bits_at(32), 3);
  EXPECT_EQ(s.bits_at(127), 3);
  EXPECT_EQ(s.bits_at(128), 2);
  EXPECT_EQ(s.bits_at(100000), 2);
  EXPECT_EQ(s.str(), "4:32,3:96,2");
  EXPECT_EQ(parse_schedule("fixed:3", 10, 0).bits_at(5), 3);
  EXPECT_EQ(parse_schedule("fixed:3", 10, 0).prefill_bits, 3);
  EXPECT_EQ(parse_schedule("4:2,2", 10, 8).prefill_bits, 8);
  // Presets over 9 decode steps (10 tokens, the first from the prefill).
  auto count = [](const PrecisionSchedule& p, int n, int b) {
    int c = 0;
    for (int k = 0; k < n; ++k) c += p.bits_at(k) == b;
    return c;
  };
  for (const char* preset : {"first-half-high:4:2", "middle-half-high:4:2", "last-half-high:4:2"}) {
    auto p = parse_schedule(preset, 17, 4);
    EXPECT_EQ(count(p, 16, 4), 8) << preset;  // equal numbers of high steps: equal average bits
  }
  auto f = parse_schedule("first-half-high:4:2", 17, 4);
  EXPECT_EQ(f.bits_at(0), 4);
  EXPECT_EQ(f.bits_at(15), 2);
  auto l = parse_schedule("last-half-high:4:2", 17, 4);
  EXPECT_EQ(l.bits_at(0), 2);
  EXPECT_EQ(l.bits_at(15), 4);
  auto m = parse_schedule("middle-half-high:4:2", 17, 4);
  EXPECT_EQ(m.bits_at(0), 2);
  EXPECT_EQ(m.bits_at(4), 4);
  EXPECT_EQ(m.bits_at(15), 2);
  auto a = parse_schedule("alternate:4:2", 17, 4);
  for (int k = 0; k < 16; ++k) EXPECT_EQ(a.bits_at(k), k % 2 ? 2 : 4);
  auto a2 = parse_schedule("alternate:4:2:3", 17, 4);
  EXPECT_EQ(a2.bits_at(2), 4);
  EXPECT_EQ(a2.bits_at(3), 2);
}

TEST(Schedule, BadSpecsAreErrors) {
  for (const char* bad : {"", "2:4,3", "4:x,2", "4:3,", "0", "17", "first-half-high:4", "alternate:4:2:0", "fixed:",
                          "nonsense", "4:2:1", "-1"})
    EXPECT_THROW(parse_schedule(bad, 16, 0), Error) << bad;
  EXPECT_THROW(make_scheduler("confidence:4:2", 16, 0, 8), Error);
  EXPECT_THROW(make_scheduler("confidence:2:4:0.5", 16, 0, 8), Error);
  EXPECT_THROW(make_scheduler("confidence:4:2:1.5", 16, 0, 8), Error);
}

class Progressive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    auto src = load_model(test::source_dir() + "/models/pmpd-tiny");
    quant::quantize_model(*src, dir_->file("q.gguf"), {});
    q_ = load_model(dir_->file("q.gguf")).release();
    Tokenizer tok(*q_->tokenizer);
    prompt_ = new std::vector<int>(tok.encode("German: Zwei Hunde spielen im Schnee.\nEnglish:\n", true));
  }
  static void TearDownTestSuite() {
    delete prompt_;
    delete q_;
    delete dir_;
  }
  static GenerateResult run(Scheduler* s, int n = 24, bool logits = false, int bits = 0,
                            const std::function<bool(int)>& cb = {}) {
    Transformer tf(*q_);
    GenerateOptions opt;
    opt.max_new_tokens = n;
    opt.stop_at_eos = false;
    opt.scheduler = s;
    opt.bits = bits;
    opt.keep_logits = logits;
    return generate(tf, *prompt_, opt, cb);
  }
  static test::TempDir* dir_;
  static Model* q_;
  static std::vector<int>* prompt_;
};
test::TempDir* Progressive::dir_;
Model* Progressive::q_;
std::vector<int>* Progressive::prompt_;

TEST_F(Progressive, ScheduleIsObeyedTokenByTokenAndAveraged) {
  StaticScheduler s(parse_schedule("5:4,3:6,2", 24, 8));
  auto r = run(&s);
  ASSERT_EQ(r.token_bits.size(), 24u);
  EXPECT_EQ(r.prefill_bits, 8);
  EXPECT_EQ(r.token_bits[0], 8);
  for (size_t i = 1; i < r.token_bits.size(); ++i) EXPECT_EQ(r.token_bits[i], s.schedule().bits_at(int(i) - 1)) << i;
  double mean = 0;
  for (int b : r.token_bits) mean += b;
  EXPECT_DOUBLE_EQ(r.average_bits(), mean / 24);
  EXPECT_DOUBLE_EQ(r.average_bits(), (8 + 4 * 5 + 6 * 3 + 13 * 2) / 24.0);
}

TEST_F(Progressive, MixedPrecisionEqualsRecomputingFromScratchWithEachTokensWidth) {
  StaticScheduler s(parse_schedule("alternate:7:2:3", 12, 6));
  auto r = run(&s, 12, /*logits=*/true);
  const ModelConfig& c = q_->config;
  Transformer tf(*q_);
  std::vector<float> logits(size_t(c.vocab_size));
  for (size_t step = 1; step < r.tokens.size(); ++step) {
    // A fresh cache: the prompt at the prefill width, then each earlier token at the
    // width of the pass that consumed it.
    KVCache cache(c, int(prompt_->size() + step), true);
    tf.forward(prompt_->data(), int(prompt_->size()), cache, logits.data(), false, r.prefill_bits);
    for (size_t j = 0; j < step; ++j) tf.forward(&r.tokens[j], 1, cache, logits.data(), false, r.token_bits[j + 1]);
    EXPECT_LT(test::rel_error(logits, r.logits[step]), 1e-6) << "step " << step;
  }
}

TEST_F(Progressive, FixedScheduleEqualsBits) {
  auto fixed = make_scheduler("fixed:3", 16, 0, 8);
  auto a = run(fixed.get(), 16, true);
  auto b = run(nullptr, 16, true, /*bits=*/3);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.logits, b.logits);
  EXPECT_EQ(a.token_bits, b.token_bits);
}

TEST_F(Progressive, GreedyTokensFromTheModelEqualSamplingItsLogits) {
  // Without kept logits a greedy generation takes each step's token from
  // Transformer::forward_greedy; with them, from the sampler on the host: same tokens.
  StaticScheduler s1(parse_schedule("5:4,3:6,2", 20, 8)), s2(parse_schedule("5:4,3:6,2", 20, 8));
  auto model_side = run(&s1, 20), host_side = run(&s2, 20, /*logits=*/true);
  EXPECT_EQ(model_side.tokens, host_side.tokens);
  EXPECT_EQ(model_side.token_bits, host_side.token_bits);
  // forward_greedy is the first largest logit of the same pass.
  const ModelConfig& c = q_->config;
  Transformer tf(*q_);
  KVCache a(c, 64, true), b(c, 64, true);
  std::vector<float> logits(size_t(c.vocab_size));
  tf.forward(prompt_->data(), int(prompt_->size()), a, logits.data(), false, 4);
  const int want = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
  EXPECT_EQ(tf.forward_greedy(prompt_->data(), int(prompt_->size()), b, 4), want);
  EXPECT_EQ(b.length(), a.length());
}

TEST_F(Progressive, QueuedGreedyStepsEqualForwardGreedyOnTheCpu) {
  // Transformer::queue_step on the CPU backend runs the step at once: a chain of queued
  // steps (each taking the token of the one before) gives forward_greedy's tokens; a ticket
  // 64 queued steps old is an error, not a stale token.
  const ModelConfig& c = q_->config;
  Transformer tf(*q_);
  KVCache ref(c, 64, true), a(c, 64, true);
  int want = tf.forward_greedy(prompt_->data(), int(prompt_->size()), ref, 5);
  const int first = tf.forward_greedy(prompt_->data(), int(prompt_->size()), a, 5);
  ASSERT_EQ(first, want);
  std::vector<int> wants, gots;
  int64_t ticket = -1;
  for (int step = 0; step < 8; ++step) {
    const int bits = 2 + step % 3;
    want = tf.forward_greedy(&want, 1, ref, bits);
    wants.push_back(want);
    ticket = tf.queue_step(step == 0 ? first : -1, ticket, a, bits);
    gots.push_back(tf.take_step(ticket));
  }
  EXPECT_EQ(gots, wants);
  EXPECT_EQ(a.length(), ref.length());
  EXPECT_EQ(tf.take_step(ticket), wants.back());  // taken again: the same token
  test::expect_old_tickets_refused(tf, first, 2);
}

TEST_F(Progressive, MemoryDoesNotGrowWithSwitches) {
  auto peak_during = [&](const std::string& spec) {
    auto s = make_scheduler(spec, 64, 8, 8);
    size_t base = mallinfo2().uordblks, peak = 0;
    run(s.get(), 64, false, 0, [&](int) {
      peak = std::max(peak, mallinfo2().uordblks - std::min(base, mallinfo2().uordblks));
      return true;
    });
    return peak;
  };
  size_t none = peak_during("fixed:8"), many = peak_during("alternate:8:2"), again = peak_during("alternate:8:2");
  EXPECT_LE(many, none + 64 * 1024) << "63 switches vs none";
  EXPECT_LE(again, many + 4096) << "a second run with switches needs no more memory";
}

TEST_F(Progressive, ConfidenceSchedulerMovesBetweenItsWidths) {
  ConfidenceScheduler s(8, 6, 2, 0.5f, 2);
  auto r = run(&s, 32);
  EXPECT_EQ(r.token_bits[0], 8);
  int lowest = 8;
  for (size_t i = 1; i < r.token_bits.size(); ++i) {
    EXPECT_GE(r.token_bits[i], 2);
    EXPECT_LE(r.token_bits[i], 6);
    lowest = std::min(lowest, r.token_bits[i]);
  }
  EXPECT_LT(lowest, 6) << "a confident greedy translation should step down at least once";
}

}  // namespace
}  // namespace pmpd
