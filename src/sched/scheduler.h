// The scheduler interface of Algorithm 1 (PMPDScheduler): asked once for the prefill
// width, told the prefill's result, then asked before every decode step for that step's
// width, seeing the step index, the KV cache and the latest logits.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "sched/schedule.h"

namespace pmpd {

struct StepContext {
  int step;              // decode step k: its pass consumes generated token k
  const KVCache& cache;  // the 16-bit cache so far
  const float* logits;   // logits that chose the latest token; null unless reads_step_logits()
  int vocab;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual int prefill_bits() const = 0;
  // Called once after the prefill (the learned scheduler predicts here).
  virtual void on_prefill(const KVCache& cache, const float* logits, int vocab) {}
  virtual int next_bits(const StepContext& ctx) = 0;
  // Whether next_bits reads ctx.logits. A greedy generation whose scheduler does not
  // leaves the logits on the device (Transformer::forward_greedy).
  virtual bool reads_step_logits() const { return false; }
  virtual std::string describe() const = 0;
  // Every width this scheduler may ask for (prefill included), for checking against a file.
  virtual std::vector<int> widths() const = 0;
};

// Every step at the schedule's width: fixed:B is the single-precision baseline.
class StaticScheduler : public Scheduler {
 public:
  explicit StaticScheduler(PrecisionSchedule s) : s_(std::move(s)) {}
  int prefill_bits() const override { return s_.prefill_bits; }
  int next_bits(const StepContext& ctx) override { return s_.bits_at(ctx.step); }
  std::string describe() const override { return "static " + s_.str() + " (prefill " + std::to_string(s_.prefill_bits) + ")"; }
  const PrecisionSchedule& schedule() const { return s_; }
  std::vector<int> widths() const override {
    std::vector<int> w = {s_.prefill_bits};
    for (auto& seg : s_.segments) w.push_back(seg.first);
    return w;
  }

 private:
  PrecisionSchedule s_;
};

// Our own addition: lowers the width one step after `patience` consecutive tokens whose
// top probability is at least `threshold`, and goes back to `high` as soon as one falls
// below `threshold / 2`. Confident stretches run cheap; doubt restores precision.
class ConfidenceScheduler : public Scheduler {
 public:
  ConfidenceScheduler(int prefill, int high, int low, float threshold, int patience = 4);
  int prefill_bits() const override { return prefill_; }
  int next_bits(const StepContext& ctx) override;
  bool reads_step_logits() const override { return true; }
  std::string describe() const override;
  std::vector<int> widths() const override { return {prefill_, high_, low_}; }

 private:
  int prefill_, high_, low_, current_, streak_ = 0, patience_;
  float threshold_;
};

// "static:<schedule>" (or a bare schedule, or a calibrated schedule file FILE.json), "learned:FILE.gguf", "confidence:H:L:THRESHOLD[:PATIENCE]".
std::unique_ptr<Scheduler> make_scheduler(const std::string& spec, int max_new_tokens, int prefill_bits,
                                          int default_bits);

}  // namespace pmpd
