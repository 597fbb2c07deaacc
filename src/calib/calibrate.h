// The offline stage of PMPD (Algorithm 1): from a calibration split and a tolerance,
// phase-aware precision allocation (PAPAlloc) picks the prefill and decode widths, then
// the static scheduler's search picks where decoding drops to each lower width.
//
//   PAPAlloc: every (prefill p, decode d <= p) pair of the ladder is scored; the cheapest
//   pair whose quality stays within the tolerance of the reference wins (cheapest: the
//   lowest decode width, then the lowest prefill width, since decoding is memory-bound
//   and the prefill is not).
//   Static search: from d, try dropping to d-1 at each candidate decode step; keep the
//   candidate with the lowest average bits that stays within the tolerance; repeat from
//   there for d-2, ... until no candidate passes or the ladder ends.
// Both share work through calib/branching: all decode widths of one prefill share that
// prefill, and a drop at step s reuses the s steps before it.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "calib/branching.h"
#include "core/journal.h"
#include "eval/task.h"
#include "model/model_loader.h"

namespace pmpd::calib {

struct CalibOptions {
  int bits_lo = 2, bits_hi = 8;      // the ladder of widths searched
  std::string metric;                // the task metric held within the tolerance
  double tolerance = 0.02;           // allowed loss of quality
  bool relative = true;              // tolerance as a fraction of the reference quality (else metric points)
  std::vector<int> switch_steps;     // candidate decode steps for a drop; empty: default_switch_steps
  const Model* reference = nullptr;  // a 16-bit model as the reference; null: the ladder's highest width
  Backend backend = Backend::CPU;    // where the candidate generations run
  // Where finished generations are logged and read back on a rerun (null: nowhere). Its
  // key must name the model, prompts and limits; the searches are deterministic, so a
  // resumed run asks for the same units and ends with the same result.
  Journal* journal = nullptr;
};

struct PairResult {
  int prefill_bits = 0, decode_bits = 0;
  double quality = 0, average_bits = 0;
};

struct SwitchResult {
  int step = 0;  // first decode step at the lower width
  double quality = 0, average_bits = 0;
};

struct SwitchLevel {
  int from_bits = 0, to_bits = 0;
  std::vector<SwitchResult> candidates;
  std::optional<SwitchResult> chosen;  // empty: no drop stays within the tolerance
};

struct CalibResult {
  std::string reference;  // what the quality is compared with
  double reference_quality = 0, threshold = 0;
  std::vector<PairResult> pairs;
  PairResult allocation;        // PAPAlloc's choice
  bool within_tolerance = true;  // false: not even the highest width met the threshold
  std::vector<SwitchLevel> levels;
  PrecisionSchedule schedule;   // prefill width + decode segments
  double quality = 0, average_bits = 0;
  double seconds_reference = 0, seconds_papalloc = 0, seconds_static = 0;
  PassCount passes;
};

// The lowest quality accepted.
double quality_threshold(double reference_quality, double tolerance, bool relative);
// Lowest decode width, then lowest prefill width, among pairs at or above the threshold.
std::optional<PairResult> cheapest_pair(const std::vector<PairResult>& pairs, double threshold);
// Lowest average bits, then earliest step, among candidates at or above the threshold.
std::optional<SwitchResult> cheapest_switch(const std::vector<SwitchResult>& candidates, double threshold);
// 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (denser early, where errors cost most), below max_new_tokens - 1.
std::vector<int> default_switch_steps(int max_new_tokens);

using ProgressFn = std::function<void(const std::string& stage, int done, int total)>;

CalibResult calibrate(const Model& model, const Tokenizer& tok, const eval::Task& task,
                      const std::vector<eval::Example>& examples, const CalibOptions& opt,
                      const ProgressFn& progress = {});

}  // namespace pmpd::calib
