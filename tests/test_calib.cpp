// Calibration: branched generations equal separate ones, the PAPAlloc and static-search
// choices, schedule files, and an end-to-end calibration whose reported quality is what
// `eval` measures with the schedule it wrote.
#include <fstream>

#include "calib/calibrate.h"
#include "decode/generator.h"
#include "eval/scoring.h"
#include "eval/stop_text.h"
#include "quant/quantize_model.h"
#include "sched/schedule_file.h"
#include "sched/scheduler.h"
#include "test_util.h"

namespace pmpd {
namespace {

using calib::PairResult;
using calib::SwitchResult;

TEST(Calibration, ThresholdIsRelativeOrInPoints) {
  EXPECT_DOUBLE_EQ(calib::quality_threshold(20.0, 0.05, true), 19.0);
  EXPECT_DOUBLE_EQ(calib::quality_threshold(20.0, 0.5, false), 19.5);
}

TEST(Calibration, PapallocPicksLowestDecodeThenLowestPrefillWithinThreshold) {
  std::vector<PairResult> pairs = {{4, 4, 20.0, 4}, {4, 3, 19.6, 3.1}, {4, 2, 12.0, 2.2}, {3, 3, 19.0, 3},
                                   {3, 2, 11.0, 2.1}, {2, 2, 9.0, 2}, {8, 3, 19.8, 3.4}};
  auto best = calib::cheapest_pair(pairs, 19.5);
  ASSERT_TRUE(best);
  EXPECT_EQ(best->prefill_bits, 4);  // (3,3) misses the threshold; (4,3) is cheaper than (8,3)
  EXPECT_EQ(best->decode_bits, 3);
  best = calib::cheapest_pair(pairs, 18.0);
  ASSERT_TRUE(best);
  EXPECT_EQ(best->prefill_bits, 3);
  EXPECT_EQ(best->decode_bits, 3);
  EXPECT_FALSE(calib::cheapest_pair(pairs, 25.0));
}

TEST(Calibration, StaticSearchPicksLowestBitsWithinThreshold) {
  std::vector<SwitchResult> c = {{0, 15.0, 3.0}, {2, 19.2, 3.2}, {4, 19.7, 3.3}, {8, 19.9, 3.5}, {16, 20.0, 3.8}};
  auto s = calib::cheapest_switch(c, 19.5);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->step, 4);
  EXPECT_FALSE(calib::cheapest_switch(c, 21.0));
  // Equal bits (e.g. every output ended before both steps): the earlier step.
  std::vector<SwitchResult> same = {{8, 20.0, 3.0}, {4, 20.0, 3.0}};
  EXPECT_EQ(calib::cheapest_switch(same, 19.0)->step, 4);
}

TEST(Calibration, DefaultStepsAreDenseEarlyAndInsideTheGeneration) {
  EXPECT_EQ(calib::default_switch_steps(64), (std::vector<int>{0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48}));
  EXPECT_EQ(calib::default_switch_steps(5), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(calib::default_switch_steps(1).empty());
}

TEST(ScheduleFile, LoadsAndBadFilesNameTheProblem) {
  test::TempDir d;
  test::write_bytes(d.file("s.json"), R"({"prefill_bits": 6, "schedule": "4:3,3", "quality": 1})");
  auto s = load_schedule_file(d.file("s.json"), 32);
  EXPECT_EQ(s.prefill_bits, 6);
  EXPECT_EQ(s.bits_at(2), 4);
  EXPECT_EQ(s.bits_at(3), 3);
  EXPECT_EQ(load_schedule_file(d.file("s.json"), 32, 8).prefill_bits, 8);
  auto sched = make_scheduler(d.file("s.json"), 32, 0, 8);
  EXPECT_EQ(sched->prefill_bits(), 6);
  auto expect_error = [](const std::string& path, const std::string& what) {
    try {
      load_schedule_file(path, 32);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  test::write_bytes(d.file("a.json"), R"({"schedule": "4:3,3"})");
  expect_error(d.file("a.json"), "prefill_bits");
  test::write_bytes(d.file("b.json"), R"({"prefill_bits": 4, "schedule": "2:3,4"})");
  expect_error(d.file("b.json"), "b.json");
  test::write_bytes(d.file("c.json"), "{not json");
  expect_error(d.file("c.json"), "c.json");
  expect_error(d.file("missing.json"), "missing.json");
}

class CalibratedModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    q_ = test::quantized_tiny(*dir_, 2, 4).release();
    // A small translation task over Multi30k validation sentences (../shared/data; a checkout
    // without it skips these tests rather than failing on an empty task).
    std::ifstream de(test::shared_path("data/multi30k/val.de")), en(test::shared_path("data/multi30k/val.en"));
    no_data_ = !de || !en;
    std::ofstream out(dir_->file("val.jsonl"));
    std::string a, b;
    for (int i = 0; i < 6 && std::getline(de, a) && std::getline(en, b); ++i) out << Json{{"de", a}, {"en", b}}.dump() << "\n";
    out.close();
    test::write_bytes(dir_->file("task.json"), R"({"name": "t", "data": {"calibration": "val.jsonl", "test": "val.jsonl"},
      "prompt": "German: {de}\nEnglish:\n", "reference": "en", "max_new_tokens": 16, "stop": ["\n"],
      "metrics": ["chrf", "sacrebleu"]})");
  }
  static void TearDownTestSuite() {
    delete q_;
    delete dir_;
  }
  static test::TempDir* dir_;
  static Model* q_;
  static bool no_data_;
};
test::TempDir* CalibratedModel::dir_ = nullptr;
Model* CalibratedModel::q_ = nullptr;
bool CalibratedModel::no_data_ = false;

// Separate generate() runs with the eval path's stop handling, one per schedule.
calib::GreedyOutput generate_separately(Transformer& tf, const Tokenizer& tok, const std::vector<int>& prompt,
                                        const PrecisionSchedule& s, int max_new, const std::vector<std::string>& stop) {
  StaticScheduler sched(s);
  GenerateOptions opt;
  opt.max_new_tokens = max_new;
  opt.eos = tok.eos();
  opt.scheduler = &sched;
  eval::StopText text(tok, stop);
  GenerateResult r = generate(tf, prompt, opt, [&](int id) { return text.push(id); });
  return {text.text(), r.tokens, r.token_bits};
}

TEST_F(CalibratedModel, BranchedGenerationsEqualSeparateOnes) {
  Tokenizer tok(*q_->tokenizer);
  Transformer tf(*q_);
  const std::vector<std::string> stop = {"\n"};
  for (const char* text : {"German: Ein Mann fährt mit dem Fahrrad über eine Brücke.\nEnglish:\n",
                           "German: Zwei Hunde spielen im Schnee.\nEnglish:\n", "A dog"}) {
    auto prompt = tok.encode(text, true);
    const int max_new = 20;
    PrecisionSchedule base = parse_schedule("4:2,3", max_new, 4);
    std::vector<calib::Branch> br = {{0, 2}, {1, 3}, {2, 3}, {5, 2}, {9, 3}, {40, 2}};
    calib::TaskLimits lim{&tok, max_new, stop};
    calib::PassCount count;
    auto outs = calib::generate_with_branches(tf, prompt, 4, base, br, lim, &count);
    ASSERT_EQ(outs.size(), br.size() + 1);
    auto check = [&](const calib::GreedyOutput& got, const PrecisionSchedule& s, const std::string& what) {
      auto want = generate_separately(tf, tok, prompt, s, max_new, stop);
      EXPECT_EQ(got.tokens, want.tokens) << what;
      EXPECT_EQ(got.token_bits, want.token_bits) << what;
      EXPECT_EQ(got.text, want.text) << what;
    };
    check(outs[0], base, "base");
    for (size_t j = 0; j < br.size(); ++j) {
      // The base up to the branch step, then the branch's width.
      PrecisionSchedule s;
      s.prefill_bits = 4;
      for (int k = 0; k < br[j].step; ++k) s.segments.push_back({base.bits_at(k), 1});
      s.segments.push_back({br[j].bits, 1});
      check(outs[j + 1], s, "branch at " + std::to_string(br[j].step));
    }
    EXPECT_LT(count.passes, count.without_sharing);
  }
}

TEST_F(CalibratedModel, CalibrationChoosesWithinToleranceAndEvalReproducesIt) {
  if (no_data_) GTEST_SKIP() << "no ../shared/data/multi30k";
  auto task = eval::load_task(dir_->file("task.json"));
  auto examples = eval::load_examples(task, "calibration", 0);
  Tokenizer tok(*q_->tokenizer);
  calib::CalibOptions opt;
  opt.bits_lo = 2, opt.bits_hi = 4;
  opt.tolerance = 0.10;
  auto r = calib::calibrate(*q_, tok, task, examples, opt);
  ASSERT_EQ(r.pairs.size(), 6u);  // (p, d) with 2 <= d <= p <= 4
  EXPECT_EQ(r.reference, "4-bit");
  EXPECT_NEAR(r.threshold, 0.9 * r.reference_quality, 1e-9);
  EXPECT_TRUE(r.within_tolerance);
  for (auto& p : r.pairs)  // nothing cheaper than the allocation passes
    EXPECT_TRUE(p.quality < r.threshold || p.decode_bits >= r.allocation.decode_bits) << p.prefill_bits << p.decode_bits;
  EXPECT_GE(r.quality, r.threshold);
  EXPECT_LE(r.average_bits, r.allocation.average_bits);
  EXPECT_EQ(r.schedule.prefill_bits, r.allocation.prefill_bits);
  EXPECT_TRUE(r.schedule.non_increasing());
  EXPECT_LT(r.passes.passes, r.passes.without_sharing);

  // What eval measures with the written schedule is what calibration reported.
  Transformer tf(*q_);
  std::vector<std::string> hyps;
  double bits = 0;
  for (auto& e : examples) {
    auto o = generate_separately(tf, tok, tok.encode(e.prompt, tok.add_bos_default()), r.schedule, task.max_new_tokens,
                                 task.stop);
    hyps.push_back(o.text);
    bits += o.average_bits();
  }
  EXPECT_NEAR(eval::score_metric("chrf", hyps, examples), r.quality, 1e-9);
  EXPECT_NEAR(bits / double(examples.size()), r.average_bits, 1e-9);
}

TEST_F(CalibratedModel, ZeroToleranceKeepsTheReferenceQuality) {
  if (no_data_) GTEST_SKIP() << "no ../shared/data/multi30k";
  auto task = eval::load_task(dir_->file("task.json"));
  auto examples = eval::load_examples(task, "calibration", 4);
  Tokenizer tok(*q_->tokenizer);
  calib::CalibOptions opt;
  opt.bits_lo = 2, opt.bits_hi = 4;
  opt.tolerance = 0;
  opt.metric = "agreement";  // against the 4-bit outputs: only identical outputs reach 100
  auto r = calib::calibrate(*q_, tok, task, examples, opt);
  EXPECT_DOUBLE_EQ(r.reference_quality, 100.0);
  EXPECT_DOUBLE_EQ(r.quality, 100.0);
}

TEST_F(CalibratedModel, JournalledCalibrationResumesWithTheSameResult) {
  if (no_data_) GTEST_SKIP() << "no ../shared/data/multi30k";
  auto task = eval::load_task(dir_->file("task.json"));
  auto examples = eval::load_examples(task, "calibration", 4);
  Tokenizer tok(*q_->tokenizer);
  calib::CalibOptions opt;
  opt.bits_lo = 2, opt.bits_hi = 4;
  opt.tolerance = 0.10;
  auto plain = calib::calibrate(*q_, tok, task, examples, opt);
  const std::string path = dir_->file("cal.journal");
  calib::CalibResult first, second;
  {
    Journal j(path, "k");
    opt.journal = &j;
    first = calib::calibrate(*q_, tok, task, examples, opt);
  }
  size_t units = 0;
  {
    Journal j(path, "k");
    units = j.resumed();
    opt.journal = &j;
    second = calib::calibrate(*q_, tok, task, examples, opt);
  }
  // 3 prefill widths + one unit per search level, for every example; all read back.
  EXPECT_EQ(units, size_t(4) * (3 + first.levels.size()));
  for (auto* r : {&first, &second}) {
    EXPECT_EQ(r->schedule.str(), plain.schedule.str());
    EXPECT_DOUBLE_EQ(r->quality, plain.quality);
    EXPECT_DOUBLE_EQ(r->average_bits, plain.average_bits);
    EXPECT_EQ(r->passes.passes, plain.passes.passes);
    EXPECT_EQ(r->passes.without_sharing, plain.passes.without_sharing);
    ASSERT_EQ(r->pairs.size(), plain.pairs.size());
    for (size_t i = 0; i < plain.pairs.size(); ++i) EXPECT_DOUBLE_EQ(r->pairs[i].quality, plain.pairs[i].quality);
  }
  // A different key (another model, other prompts) starts over.
  Journal other(path, "another key");
  EXPECT_EQ(other.resumed(), 0u);
}

TEST(Journal, KeepsFinishedUnitsSkipsTornLinesAndDropsOtherKeys) {
  test::TempDir dir;
  const std::string path = dir.file("j.journal");
  {
    Journal j(path, "key 1");
    EXPECT_EQ(j.resumed(), 0u);
    j.append("a", Json{{"x", 1}});
    j.append("b", Json::array({1, 2}));
  }
  { std::ofstream(path, std::ios::app) << "{\"id\": \"c\", \"val"; }  // killed mid-write
  {
    Journal j(path, "key 1");
    EXPECT_EQ(j.resumed(), 2u);
    ASSERT_TRUE(j.find("a"));
    EXPECT_EQ((*j.find("a"))["x"], 1);
    EXPECT_EQ(*j.find("b"), Json::array({1, 2}));
    EXPECT_FALSE(j.find("c"));
    j.append("c", Json("done"));  // lands on its own line after the torn one was dropped
  }
  {
    Journal j(path, "key 1");
    EXPECT_EQ(j.resumed(), 3u);
    EXPECT_EQ(*j.find("c"), Json("done"));
    j.remove();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  { std::ofstream(path) << "not json\n"; }
  Journal j(path, "key 1");  // garbage is not an error: the work is simply done again
  EXPECT_EQ(j.resumed(), 0u);
}

}  // namespace
}  // namespace pmpd
