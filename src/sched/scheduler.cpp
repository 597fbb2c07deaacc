#include "sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "sched/learned_scheduler.h"
#include "sched/schedule_file.h"

namespace pmpd {

ConfidenceScheduler::ConfidenceScheduler(int prefill, int high, int low, float threshold, int patience)
    : prefill_(prefill), high_(high), low_(low), current_(high), patience_(patience), threshold_(threshold) {
  PMPD_CHECK(low >= 1 && low <= high && high <= 16, "confidence scheduler: need 1 <= LOW <= HIGH (got {}:{})", high, low);
  PMPD_CHECK(threshold > 0 && threshold < 1, "confidence scheduler: threshold {} outside (0, 1)", threshold);
  PMPD_CHECK(patience >= 1, "confidence scheduler: patience must be >= 1");
}

int ConfidenceScheduler::next_bits(const StepContext& ctx) {
  const float* l = ctx.logits;
  float mx = *std::max_element(l, l + ctx.vocab);
  double z = 0;
  for (int v = 0; v < ctx.vocab; ++v) z += std::exp(double(l[v] - mx));
  const double top = 1.0 / z;  // probability of the most likely token
  if (top < threshold_ / 2) {
    current_ = high_, streak_ = 0;
  } else if (top >= threshold_ && ++streak_ >= patience_) {
    current_ = std::max(low_, current_ - 1), streak_ = 0;
  }
  return current_;
}

std::string ConfidenceScheduler::describe() const {
  return fmt::format("confidence {}..{} at p >= {} (patience {}, prefill {})", high_, low_, threshold_, patience_, prefill_);
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& spec, int max_new_tokens, int prefill_bits,
                                          int default_bits) {
  if (spec.empty()) {
    PrecisionSchedule s;
    s.segments = {{default_bits, 1}};
    s.prefill_bits = prefill_bits ? prefill_bits : default_bits;
    s.name = "fixed";
    return std::make_unique<StaticScheduler>(s);
  }
  if (spec.rfind("learned:", 0) == 0) return std::make_unique<LearnedScheduler>(SwitchModel::load(spec.substr(8)), prefill_bits);
  if (spec.rfind("confidence:", 0) == 0) {
    int h = 0, l = 0, patience = 4;
    float t = 0;
    char extra = 0;
    int got = std::sscanf(spec.c_str() + 11, "%d:%d:%f:%d%c", &h, &l, &t, &patience, &extra);
    PMPD_CHECK(got == 3 || got == 4, "scheduler \"{}\": expected confidence:HIGH:LOW:THRESHOLD[:PATIENCE]", spec);
    return std::make_unique<ConfidenceScheduler>(prefill_bits ? prefill_bits : h, h, l, t, patience);
  }
  std::string s = spec.rfind("static:", 0) == 0 ? spec.substr(7) : spec;
  if (is_schedule_file(s)) return std::make_unique<StaticScheduler>(load_schedule_file(s, max_new_tokens, prefill_bits));
  return std::make_unique<StaticScheduler>(parse_schedule(s, max_new_tokens, prefill_bits));
}

}  // namespace pmpd
