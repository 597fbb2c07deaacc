// The learned scheduler (`--scheduler learned:FILE.gguf`): right after the prefill it reads
// one layer's keys and values from the 16-bit KV cache, predicts with a SwitchNet how many
// decode steps to keep at the high width, and then drops to the low width. Trained by
// `pmpd train-scheduler` (calib/scheduler_training); docs/format.md has the file.
#pragma once
#include <string>
#include <vector>

#include "model/transformer.h"
#include "sched/scheduler.h"
#include "sched/switch_net.h"

namespace pmpd {

struct SwitchModel {
  SwitchNet net;
  int layer = 0;                  // the layer whose prefill KV cache is read
  int prefill_bits = 0, high_bits = 0, low_bits = 0;
  std::vector<int> steps;         // class c: stay high for steps[c] decode steps
  int max_new_tokens = 0;         // the generation length the labels were made for

  void save(const std::string& path) const;
  static SwitchModel load(const std::string& path);  // throws pmpd::Error naming the file
};

// Keys and values of `layer` (negative: from the last) for every cached position.
KvFeatures kv_features(const KVCache& cache, int layer);

class LearnedScheduler : public Scheduler {
 public:
  LearnedScheduler(SwitchModel m, int prefill_override = 0);
  int prefill_bits() const override { return prefill_; }
  void on_prefill(const KVCache& cache, const float* logits, int vocab) override;
  int next_bits(const StepContext& ctx) override { return ctx.step < switch_step_ ? m_.high_bits : m_.low_bits; }
  std::string describe() const override;
  std::vector<int> widths() const override { return {prefill_, m_.high_bits, m_.low_bits}; }
  int predicted_class() const { return class_; }

 private:
  SwitchModel m_;
  int prefill_;
  int class_ = -1, switch_step_ = 1 << 30;
};

}  // namespace pmpd
