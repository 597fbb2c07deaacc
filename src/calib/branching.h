// Greedy task generations that differ only in where their precision drops share all the
// work before the drop: one base run is decoded once, and at each branch point its state
// (16-bit KV cache, logits, text so far) is copied and continued at the branch's width.
// This is what makes the calibration searches cheap: a switch at step s costs only the
// steps after s, and all widths of one prefill share that prefill.
#pragma once
#include <string>
#include <vector>

#include "model/transformer.h"
#include "sched/schedule.h"
#include "tokenizer/tokenizer.h"

namespace pmpd::calib {

// Limits of one task generation (as `pmpd eval` generates: greedy, until EOS, a stop
// string or max_new_tokens).
struct TaskLimits {
  const Tokenizer* tok = nullptr;
  int max_new_tokens = 64;
  std::vector<std::string> stop;
};

struct GreedyOutput {
  std::string text;              // cut before the first stop string, EOS left out
  std::vector<int> tokens;       // generated ids
  std::vector<int> token_bits;   // width of the pass that chose each token (token 0: the prefill)
  double average_bits() const;
};

// From decode step `step` on (the pass that consumes generated token `step`), run at `bits`.
struct Branch {
  int step = 0;
  int bits = 0;
};

struct PassCount {
  long long passes = 0;         // forward passes run
  long long without_sharing = 0;  // passes that separate generations would have run
};

// Runs `base` (prefill at prefill_bits, decode step k at base.bits_at(k)) and every branch
// (`branches` sorted by step). Returns the base output first, then one per branch; a branch
// whose step comes after the base run ended equals the base output.
std::vector<GreedyOutput> generate_with_branches(Transformer& tf, const std::vector<int>& prompt, int prefill_bits,
                                                 const PrecisionSchedule& base, const std::vector<Branch>& branches,
                                                 const TaskLimits& limits, PassCount* count = nullptr);

}  // namespace pmpd::calib
