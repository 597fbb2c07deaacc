#include "calib/scheduler_training.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "eval/rouge.h"

namespace pmpd::calib {

std::vector<int> default_class_steps(int n) { return {0, n / 3, 2 * n / 3, n}; }

int label_from_outputs(const std::vector<std::string>& outputs, const std::string& reference) {
  PMPD_CHECK(!outputs.empty(), "no outputs to label");
  auto r3 = [](double x) { return std::round(x * 1000.0) / 1000.0; };
  const double target = r3(eval::rouge_l_f1(outputs.back(), reference));
  for (size_t c = 0; c + 1 < outputs.size(); ++c)
    if (r3(eval::rouge_l_f1(outputs[c], reference)) >= target) return int(c);
  return int(outputs.size() - 1);
}

SwitchExample label_prompt(Transformer& tf, Transformer* reference, const Tokenizer& tok, const std::vector<int>& prompt,
                           const std::vector<std::string>& stop, const LabelOptions& opt) {
  const std::vector<int> steps = opt.steps.empty() ? default_class_steps(opt.max_new_tokens) : opt.steps;
  TaskLimits lim{&tok, opt.max_new_tokens, stop};
  const PrecisionSchedule high = fixed_schedule(opt.prefill_bits, opt.high_bits);
  std::vector<Branch> br;
  for (size_t c = 0; c + 1 < steps.size(); ++c) br.push_back({steps[c], opt.low_bits});
  auto outs = generate_with_branches(tf, prompt, opt.prefill_bits, high, br, lim);
  std::vector<std::string> texts;
  for (size_t c = 1; c < outs.size(); ++c) texts.push_back(outs[c].text);
  texts.push_back(outs[0].text);  // the last class never switches: the all-high output
  std::string ref;
  if (reference) {
    ref = generate_with_branches(*reference, prompt, 16, fixed_schedule(16, 16), {}, lim)[0].text;
  } else {
    const int top = tf.model().quant.bits_max;
    ref = generate_with_branches(tf, prompt, top, fixed_schedule(top, top), {}, lim)[0].text;
  }
  SwitchExample e;
  e.label = label_from_outputs(texts, ref);
  // Features: the KV cache after the prefill at the prefill width (what the scheduler sees).
  KVCache cache(tf.config(), int(prompt.size()), true);
  std::vector<float> logits(size_t(tf.config().vocab_size));
  tf.forward(prompt.data(), int(prompt.size()), cache, logits.data(), false, opt.prefill_bits);
  e.features = kv_features(cache, opt.layer);
  return e;
}

SwitchNet train_switch_net(const std::vector<SwitchExample>& data, SwitchNetShape shape, const TrainOptions& opt,
                           TrainReport* report, const std::function<void(int, double, double)>& on_epoch) {
  PMPD_CHECK(data.size() >= 2, "training needs at least 2 examples (got {})", data.size());
  shape.heads = data[0].features.heads, shape.head_dim = data[0].features.head_dim, shape.hidden = opt.hidden;
  std::mt19937_64 rng(opt.seed);
  std::vector<size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t n_val = std::clamp<size_t>(size_t(std::lround(double(data.size()) * opt.val_fraction)), 1, data.size() - 1);
  std::vector<size_t> val(order.begin(), order.begin() + long(n_val)), train(order.begin() + long(n_val), order.end());

  SwitchNet net(shape, opt.seed);
  SwitchNet best = net;
  std::vector<double>& p = net.params();
  std::vector<double> m(p.size(), 0.0), v(p.size(), 0.0), g;
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  long long t = 0;
  auto eval = [&](const SwitchNet& n, const std::vector<size_t>& idx, double* acc) {
    double loss = 0;
    int right = 0;
    std::vector<double> scratch;
    for (size_t i : idx) {
      loss += n.loss_and_grad(data[i].features, data[i].label, scratch, 0.0);
      right += n.predict(data[i].features) == data[i].label;
    }
    if (acc) *acc = double(right) / double(idx.size());
    return loss / double(idx.size());
  };
  double best_loss = eval(net, val, nullptr);
  int best_epoch = 0, epoch = 0;
  for (epoch = 1; epoch <= opt.epochs; ++epoch) {
    std::shuffle(train.begin(), train.end(), rng);
    for (size_t b0 = 0; b0 < train.size(); b0 += size_t(opt.batch)) {
      const size_t b1i = std::min(train.size(), b0 + size_t(opt.batch));
      g.assign(p.size(), 0.0);
      for (size_t i = b0; i < b1i; ++i)
        net.loss_and_grad(data[train[i]].features, data[train[i]].label, g, 1.0 / double(b1i - b0));
      ++t;
      const double c1 = 1 - std::pow(b1, double(t)), c2 = 1 - std::pow(b2, double(t));
      for (size_t k = 0; k < p.size(); ++k) {
        m[k] = b1 * m[k] + (1 - b1) * g[k];
        v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
        p[k] -= opt.lr * (m[k] / c1) / (std::sqrt(v[k] / c2) + eps);
      }
    }
    const double vl = eval(net, val, nullptr);
    if (on_epoch) on_epoch(epoch, eval(net, train, nullptr), vl);
    if (vl < best_loss - 1e-9) {
      best_loss = vl, best_epoch = epoch, best = net;
    } else if (epoch - best_epoch >= opt.patience) {
      break;
    }
  }
  if (report) {
    report->epochs_run = std::min(epoch, opt.epochs);
    report->best_epoch = best_epoch;
    report->best_val_loss = best_loss;
    report->train_size = int(train.size()), report->val_size = int(val.size());
    eval(best, train, &report->train_accuracy);
    eval(best, val, &report->val_accuracy);
    std::vector<int> counts(size_t(shape.classes), 0);
    for (size_t i : train) ++counts[size_t(data[i].label)];
    const int majority = int(std::max_element(counts.begin(), counts.end()) - counts.begin());
    int right = 0;
    for (size_t i : val) right += data[i].label == majority;
    report->majority_val_accuracy = double(right) / double(val.size());
  }
  return best;
}

// ---- Dataset cache: "PMPDSWDS" v1, a length-prefixed key, then records of
// {int32 tokens, heads, head_dim, label; f16 k[tokens*heads*head_dim]; f16 v[...]}.
namespace {
constexpr char kMagic[8] = {'P', 'M', 'P', 'D', 'S', 'W', 'D', 'S'};
constexpr int32_t kVersion = 1;
constexpr int64_t kMaxFeatureFloats = int64_t(1) << 28;
}  // namespace

std::vector<SwitchExample> read_dataset(const std::string& path, const std::string& key) {
  std::vector<SwitchExample> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  char magic[8];
  int32_t version = 0, klen = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !in.read(reinterpret_cast<char*>(&version), 4) ||
      version != kVersion || !in.read(reinterpret_cast<char*>(&klen), 4) || klen < 0 || klen > (1 << 20))
    return out;
  std::string k(size_t(klen), '\0');
  if (!in.read(k.data(), klen) || k != key) return out;
  while (true) {
    int32_t h[4];
    if (!in.read(reinterpret_cast<char*>(h), sizeof(h))) break;
    // Torn or corrupt: stop here (each size is bounded before they are multiplied).
    if (h[0] <= 0 || h[1] <= 0 || h[2] <= 0 || h[3] < 0 || h[0] > (1 << 20) || h[1] > 4096 || h[2] > 4096) break;
    const int64_t n = int64_t(h[0]) * h[1] * h[2];
    if (n > kMaxFeatureFloats) break;
    std::vector<uint16_t> kk(static_cast<size_t>(n)), vv(static_cast<size_t>(n));
    if (!in.read(reinterpret_cast<char*>(kk.data()), n * 2) || !in.read(reinterpret_cast<char*>(vv.data()), n * 2)) break;
    SwitchExample e;
    e.features.tokens = h[0], e.features.heads = h[1], e.features.head_dim = h[2], e.label = h[3];
    e.features.k.resize(size_t(n));
    e.features.v.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) e.features.k[size_t(i)] = f16_to_f32(kk[size_t(i)]), e.features.v[size_t(i)] = f16_to_f32(vv[size_t(i)]);
    out.push_back(std::move(e));
  }
  return out;
}

DatasetWriter::DatasetWriter(const std::string& path, const std::string& key, const std::vector<SwitchExample>& kept)
    : out_(path, std::ios::binary | std::ios::trunc), path_(path) {
  PMPD_CHECK(out_, "cannot write {}", path);
  const int32_t klen = int32_t(key.size());
  out_.write(kMagic, 8);
  out_.write(reinterpret_cast<const char*>(&kVersion), 4);
  out_.write(reinterpret_cast<const char*>(&klen), 4);
  out_.write(key.data(), klen);
  for (auto& e : kept) append(e);
}

void DatasetWriter::append(const SwitchExample& e) {
  const KvFeatures& f = e.features;
  const int32_t h[4] = {f.tokens, f.heads, f.head_dim, e.label};
  out_.write(reinterpret_cast<const char*>(h), sizeof(h));
  std::vector<uint16_t> buf(f.k.size());
  for (size_t i = 0; i < f.k.size(); ++i) buf[i] = f32_to_f16(f.k[i]);
  out_.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size() * 2));
  for (size_t i = 0; i < f.v.size(); ++i) buf[i] = f32_to_f16(f.v[i]);
  out_.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size() * 2));
  out_.flush();
  PMPD_CHECK(out_, "cannot write {}", path_);
}

}  // namespace pmpd::calib
