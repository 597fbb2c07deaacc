// Precision schedules: the width of the prefill and of every decode step.
// A schedule is a step function over decode steps, written "4:32,3:96,2": 32 steps at
// 4 bits, the next 96 at 3, then 2 to the end. User schedules must be non-increasing
// (PMPD lowers precision progressively); the named presets of the paper's pattern study
// (first-half-high, middle-half-high, last-half-high, alternate) need not be.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace pmpd {

struct PrecisionSchedule {
  int prefill_bits = 0;                        // 0: the model's highest width
  std::vector<std::pair<int, int>> segments;   // (bits, steps); the last one repeats forever
  std::string name;                            // as given, for reports

  // Width of decode step k (k = 0 produces the second generated token).
  int bits_at(int step) const;
  bool non_increasing() const;
  std::string str() const;
};

// The prefill at `prefill_bits`, then every decode step at `decode_bits`.
PrecisionSchedule fixed_schedule(int prefill_bits, int decode_bits);

// Parses "fixed:B", "B", "4:32,3:96,2", or a preset "first-half-high:H:L", "middle-half-high:H:L",
// "last-half-high:H:L", "alternate:H:L[:period]" for generations of `max_new_tokens`.
// Throws pmpd::Error naming the problem.
PrecisionSchedule parse_schedule(const std::string& spec, int max_new_tokens, int prefill_bits);

}  // namespace pmpd
