// The learned scheduler: gradients against finite differences, learning a known function
// of the KV statistics, file round trips, the labelling rule, the dataset cache, and the
// scheduler inside generation.
#include <random>

#include "calib/scheduler_training.h"
#include "decode/generator.h"
#include "quant/quantize_model.h"
#include "sched/learned_scheduler.h"
#include "test_util.h"

namespace pmpd {
namespace {

KvFeatures random_features(std::mt19937_64& rng, int tokens, int heads, int dim, double scale = 1.0) {
  std::normal_distribution<float> n(0.f, float(scale));
  KvFeatures f;
  f.tokens = tokens, f.heads = heads, f.head_dim = dim;
  for (int i = 0; i < tokens * heads * dim; ++i) f.k.push_back(n(rng)), f.v.push_back(n(rng));
  return f;
}

TEST(SwitchNet, GradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(7);
  SwitchNet net({3, 8, 10, 4}, 11);
  KvFeatures f = random_features(rng, 5, 3, 8);
  std::vector<double> g;
  net.loss_and_grad(f, 2, g);
  std::vector<double>& p = net.params();
  std::vector<double> scratch;
  double worst = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i], h = 1e-6;
    p[i] = keep + h;
    const double up = net.loss_and_grad(f, 2, scratch, 0.0);
    p[i] = keep - h;
    const double down = net.loss_and_grad(f, 2, scratch, 0.0);
    p[i] = keep;
    const double numeric = (up - down) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - g[i]) / std::max(1e-4, std::fabs(numeric) + std::fabs(g[i])));
  }
  EXPECT_LT(worst, 1e-4) << "over " << p.size() << " parameters";
}

// Label: which of the first four value channels is largest on average; the keys carry
// noise only, so the network must learn to pool values and read the right channels.
std::vector<calib::SwitchExample> synthetic(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<calib::SwitchExample> out;
  std::uniform_int_distribution<int> cls(0, 3), len(4, 20);
  for (int i = 0; i < n; ++i) {
    calib::SwitchExample e;
    e.label = cls(rng);
    e.features = random_features(rng, len(rng), 2, 8, 0.3);
    for (int t = 0; t < e.features.tokens; ++t)
      for (int h = 0; h < 2; ++h) e.features.v[(size_t(t) * 2 + h) * 8 + size_t(e.label)] += 1.0f;
    out.push_back(std::move(e));
  }
  return out;
}

TEST(SwitchNet, LearnsAKnownFunctionOfTheKvStatistics) {
  auto train = synthetic(400, 1), test = synthetic(200, 2);
  calib::TrainOptions opt;
  opt.hidden = 16, opt.epochs = 60, opt.seed = 3;
  calib::TrainReport rep;
  SwitchNet net = calib::train_switch_net(train, {0, 0, 0, 4}, opt, &rep);
  int right = 0;
  for (auto& e : test) right += net.predict(e.features) == e.label;
  EXPECT_GT(double(right) / double(test.size()), 0.9);
  EXPECT_GT(rep.val_accuracy, rep.majority_val_accuracy);
  // Deterministic for a seed.
  SwitchNet again = calib::train_switch_net(train, {0, 0, 0, 4}, opt);
  EXPECT_EQ(again.params(), net.params());
}

TEST(SwitchNet, SaveLoadKeepsPredictions) {
  test::TempDir d;
  SwitchModel m;
  m.net = calib::train_switch_net(synthetic(100, 5), {0, 0, 0, 4}, {16, 20, 16, 10, 3e-3, 0.2, 9});
  m.layer = 3, m.prefill_bits = 5, m.high_bits = 4, m.low_bits = 3, m.steps = {0, 10, 21, 32}, m.max_new_tokens = 32;
  m.save(d.file("s.gguf"));
  SwitchModel l = SwitchModel::load(d.file("s.gguf"));
  EXPECT_EQ(l.layer, 3);
  EXPECT_EQ(l.steps, m.steps);
  EXPECT_EQ(l.prefill_bits, 5);
  for (auto& e : synthetic(100, 6)) {
    EXPECT_EQ(l.net.predict(e.features), m.net.predict(e.features));
    auto a = l.net.logits(e.features), b = m.net.logits(e.features);
    for (size_t c = 0; c < a.size(); ++c) EXPECT_NEAR(a[c], b[c], 1e-4);
  }
  test::write_bytes(d.file("bad.gguf"), "GGUF nonsense");
  EXPECT_THROW(SwitchModel::load(d.file("bad.gguf")), Error);
}

TEST(SwitchLabels, EarliestSwitchThatAgreesAsWellAsAllHigh) {
  const std::string ref = "a man rides a bike over a bridge";
  // outputs[c] switches at steps[c]; the last never switches.
  EXPECT_EQ(calib::label_from_outputs({"a dog", "a man rides a bike", "a man rides a bike over a bridge", "a man rides a bike over a bridge"}, ref), 2);
  EXPECT_EQ(calib::label_from_outputs({"a man rides a bike over a bridge", "x", "y", "a man rides a bike"}, ref), 0);
  EXPECT_EQ(calib::label_from_outputs({"a", "b", "c", "a man rides"}, ref), 3);
}

TEST(SwitchDataset, CacheRoundTripsAndSurvivesATornTail) {
  test::TempDir d;
  auto data = synthetic(5, 8);
  {
    calib::DatasetWriter w(d.file("x.ds"), "key1", {});
    for (auto& e : data) w.append(e);
  }
  auto back = calib::read_dataset(d.file("x.ds"), "key1");
  ASSERT_EQ(back.size(), 5u);
  EXPECT_EQ(back[3].label, data[3].label);
  EXPECT_NEAR(back[3].features.v[7], data[3].features.v[7], 1e-2);
  EXPECT_TRUE(calib::read_dataset(d.file("x.ds"), "other key").empty());
  std::string bytes = test::read_bytes(d.file("x.ds"));
  test::write_bytes(d.file("x.ds"), bytes.substr(0, bytes.size() - 10));  // cut inside the last record
  EXPECT_EQ(calib::read_dataset(d.file("x.ds"), "key1").size(), 4u);
}

TEST(LearnedScheduler, PredictsOnceAfterThePrefillAndFollowsItsSwitch) {
  test::TempDir d;
  auto q = test::quantized_tiny(d, 2, 4);
  Tokenizer tok(*q->tokenizer);
  Transformer tf(*q);
  calib::LabelOptions lo;
  lo.high_bits = 4, lo.low_bits = 3, lo.prefill_bits = 4, lo.max_new_tokens = 9;
  std::vector<calib::SwitchExample> data;
  for (const char* p : {"A dog", "Two men", "The woman", "German: Ein Hund.\nEnglish:\n", "A child plays", "People walk",
                        "Word: dog\nDefinition:\n", "A red car", "Three girls", "Word: bridge\nDefinition:\n"})
    data.push_back(calib::label_prompt(tf, nullptr, tok, tok.encode(p, true), {}, lo));
  for (auto& e : data) {
    EXPECT_GE(e.label, 0);
    EXPECT_LE(e.label, 3);
    EXPECT_EQ(e.features.heads, q->config.n_kv_heads);
  }
  SwitchModel m;
  m.net = calib::train_switch_net(data, {0, 0, 0, 4}, {8, 5, 4, 5, 3e-3, 0.2, 1});
  m.layer = q->config.n_layers - 1, m.prefill_bits = 4, m.high_bits = 4, m.low_bits = 3;
  m.steps = calib::default_class_steps(9), m.max_new_tokens = 9;
  m.save(d.file("sched.gguf"));
  auto sched = make_scheduler("learned:" + d.file("sched.gguf"), 9, 0, 4);
  auto* learned = dynamic_cast<LearnedScheduler*>(sched.get());
  ASSERT_NE(learned, nullptr);
  GenerateOptions opt;
  opt.max_new_tokens = 9;
  opt.stop_at_eos = false;
  opt.scheduler = sched.get();
  auto prompt = tok.encode("Two men", true);
  auto r = generate(tf, prompt, opt);
  const int c = learned->predicted_class();
  ASSERT_GE(c, 0);
  // The prediction equals the network's on the prefill features.
  KVCache cache(q->config, int(prompt.size()), true);
  std::vector<float> logits(size_t(q->config.vocab_size));
  tf.forward(prompt.data(), int(prompt.size()), cache, logits.data(), false, 4);
  EXPECT_EQ(m.net.predict(kv_features(cache, -1)), c);
  ASSERT_EQ(r.token_bits.size(), 9u);
  EXPECT_EQ(r.token_bits[0], 4);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(r.token_bits[size_t(k) + 1], k < m.steps[size_t(c)] ? 4 : 3) << "step " << k;
}

}  // namespace
}  // namespace pmpd
