// Training the learned scheduler: labels from the engine itself, then a SwitchNet fitted
// with Adam. A prompt's label is the earliest candidate switch step whose output (high width
// until the step, low after) agrees with the reference output at least as well as the
// all-high output does (ROUGE-L, rounded to 3 decimals, as the official PMPD code does);
// the last class ("never switch") when none does.
#pragma once
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "calib/branching.h"
#include "sched/learned_scheduler.h"

namespace pmpd::calib {

struct SwitchExample {
  KvFeatures features;
  int label = 0;
};

struct LabelOptions {
  int prefill_bits = 4, high_bits = 4, low_bits = 3;
  int max_new_tokens = 32;
  std::vector<int> steps;            // candidate classes; default {0, N/3, 2N/3, N}
  int layer = -1;                    // KV layer read (negative: from the last)
  const Model* reference = nullptr;  // 16-bit model; null: the file's highest width
};

std::vector<int> default_class_steps(int max_new_tokens);

// Label and features of one prompt (greedy, `stop` strings end outputs).
SwitchExample label_prompt(Transformer& tf, Transformer* reference, const Tokenizer& tok, const std::vector<int>& prompt,
                           const std::vector<std::string>& stop, const LabelOptions& opt);

// The label rule on its own: outputs[c] is the output that switches at steps[c]
// (the last one never switches); `reference` the reference output.
int label_from_outputs(const std::vector<std::string>& outputs, const std::string& reference);

struct TrainOptions {
  int hidden = 64, epochs = 300, batch = 32, patience = 30;
  double lr = 3e-3, val_fraction = 0.2;
  uint64_t seed = 1;
};

struct TrainReport {
  int epochs_run = 0, best_epoch = 0, train_size = 0, val_size = 0;
  double best_val_loss = 0, train_accuracy = 0, val_accuracy = 0, majority_val_accuracy = 0;
};

// Deterministic for a seed: shuffled split, minibatch Adam, the parameters of the epoch
// with the lowest validation loss.
SwitchNet train_switch_net(const std::vector<SwitchExample>& data, SwitchNetShape shape, const TrainOptions& opt,
                           TrainReport* report = nullptr, const std::function<void(int, double, double)>& on_epoch = {});

// The dataset cache: a binary file of examples (docs/format.md), appended as they are made
// so an interrupted generation resumes. `key` identifies the settings; a file made with other
// settings is ignored (and replaced).
std::vector<SwitchExample> read_dataset(const std::string& path, const std::string& key);

// Rewrites the file with `kept` (dropping a torn last record), then appends one record a call.
class DatasetWriter {
 public:
  DatasetWriter(const std::string& path, const std::string& key, const std::vector<SwitchExample>& kept);
  void append(const SwitchExample& e);

 private:
  std::ofstream out_;
  std::string path_;
};

}  // namespace pmpd::calib
