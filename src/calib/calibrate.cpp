#include "calib/calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "eval/scoring.h"

namespace pmpd::calib {

double quality_threshold(double ref, double tol, bool relative) { return relative ? ref * (1.0 - tol) : ref - tol; }

std::optional<PairResult> cheapest_pair(const std::vector<PairResult>& pairs, double threshold) {
  std::optional<PairResult> best;
  for (auto& p : pairs) {
    if (p.quality < threshold) continue;
    if (!best || p.decode_bits < best->decode_bits ||
        (p.decode_bits == best->decode_bits && p.prefill_bits < best->prefill_bits))
      best = p;
  }
  return best;
}

std::optional<SwitchResult> cheapest_switch(const std::vector<SwitchResult>& cands, double threshold) {
  std::optional<SwitchResult> best;
  for (auto& c : cands) {
    if (c.quality < threshold) continue;
    if (!best || c.average_bits < best->average_bits - 1e-12 ||
        (std::abs(c.average_bits - best->average_bits) <= 1e-12 && c.step < best->step))
      best = c;
  }
  return best;
}

std::vector<int> default_switch_steps(int max_new_tokens) {
  std::vector<int> steps;
  for (int s : {0, 1, 2, 3})
    if (s < max_new_tokens - 1) steps.push_back(s);
  for (int p = 4; p < max_new_tokens - 1; p *= 2) {
    steps.push_back(p);
    if (p + p / 2 < max_new_tokens - 1) steps.push_back(p + p / 2);
  }
  return steps;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The schedule whose last (open) segment, begun at decode step `start`, drops to `to` at `step`.
PrecisionSchedule drop_at(PrecisionSchedule s, int start, int step, int to) {
  auto& last = s.segments.back();
  if (step > start) {
    last.second = step - start;
    s.segments.push_back({to, 1});
  } else {
    last = {to, 1};
  }
  return s;
}

double mean_bits(const std::vector<GreedyOutput>& outs) {
  double s = 0;
  for (auto& o : outs) s += o.average_bits();
  return outs.empty() ? 0 : s / double(outs.size());
}

Json outputs_json(const std::vector<GreedyOutput>& outs, const PassCount& passes) {
  Json a = Json::array();
  for (auto& o : outs) a.push_back({{"text", o.text}, {"tokens", o.tokens}, {"bits", o.token_bits}});
  return {{"outputs", a}, {"passes", {passes.passes, passes.without_sharing}}};
}

std::vector<GreedyOutput> outputs_from_json(const Json& j, PassCount& passes) {
  std::vector<GreedyOutput> outs;
  for (auto& o : j.at("outputs"))
    outs.push_back({o.at("text").get<std::string>(), o.at("tokens").get<std::vector<int>>(),
                    o.at("bits").get<std::vector<int>>()});
  passes.passes += j.at("passes").at(0).get<long long>();
  passes.without_sharing += j.at("passes").at(1).get<long long>();
  return outs;
}

// One unit of work (the generations of one example in one stage), read back from the
// journal when an earlier run finished it, else run and logged.
std::vector<GreedyOutput> unit(Journal* journal, const std::string& id, PassCount& total,
                               const std::function<std::vector<GreedyOutput>(PassCount*)>& run) {
  if (journal)
    if (const Json* j = journal->find(id)) {
      try {
        return outputs_from_json(*j, total);
      } catch (const Json::exception&) {  // not what this version writes: do the work again
      }
    }
  PassCount mine;
  std::vector<GreedyOutput> outs = run(&mine);
  total.passes += mine.passes, total.without_sharing += mine.without_sharing;
  if (journal) journal->append(id, outputs_json(outs, mine));
  return outs;
}

std::vector<std::string> texts(const std::vector<GreedyOutput>& outs) {
  std::vector<std::string> t;
  for (auto& o : outs) t.push_back(o.text);
  return t;
}

}  // namespace

CalibResult calibrate(const Model& model, const Tokenizer& tok, const eval::Task& task,
                      const std::vector<eval::Example>& examples, const CalibOptions& opt, const ProgressFn& progress) {
  PMPD_CHECK(model.quantized(), "{}: calibration needs a model quantized by `pmpd quantize`", model.path);
  PMPD_CHECK(!examples.empty(), "calibration: no examples");
  PMPD_CHECK(opt.bits_lo >= model.quant.bits_min && opt.bits_hi <= model.quant.bits_max && opt.bits_lo <= opt.bits_hi,
             "widths {}..{} outside the file's {}..{}", opt.bits_lo, opt.bits_hi, model.quant.bits_min,
             model.quant.bits_max);
  PMPD_CHECK(opt.tolerance >= 0, "the tolerance must be >= 0");
  const std::string metric = opt.metric.empty() ? task.metrics.front() : opt.metric;
  PMPD_CHECK(eval::is_known_metric(metric), "unknown metric \"{}\"", metric);
  auto report = [&](const std::string& stage, int done, int total) {
    if (progress) progress(stage, done, total);
  };

  CalibResult r;
  const int n = int(examples.size());
  const TaskLimits lim{&tok, task.max_new_tokens, task.stop};
  std::vector<std::vector<int>> prompts;
  for (auto& e : examples) prompts.push_back(tok.encode(e.prompt, tok.add_bos_default()));
  Transformer tf(model, opt.backend);

  // Reference outputs: a 16-bit model's, or (below) the highest width's.
  std::vector<GreedyOutput> ref_out;
  auto t0 = Clock::now();
  if (opt.reference) {
    Transformer rt(*opt.reference, opt.backend);
    for (int i = 0; i < n; ++i) {
      PassCount ignored;  // reference passes are not part of the search's count
      ref_out.push_back(unit(opt.journal, fmt::format("reference/{}", i), ignored, [&](PassCount*) {
        return generate_with_branches(rt, prompts[size_t(i)], 16, fixed_schedule(16, 16), {}, lim);
      })[0]);
      report("reference (16-bit)", i + 1, n);
    }
    r.seconds_reference = since(t0);
  }
  std::vector<std::string> ref_texts;  // for the agreement metric
  auto score = [&](const std::vector<GreedyOutput>& outs) {
    return eval::score_metric(metric, texts(outs), examples, ref_texts.empty() ? nullptr : &ref_texts);
  };

  // PAPAlloc: all pairs; the decode widths of one prefill branch off at step 0.
  t0 = Clock::now();
  const int L = opt.bits_hi - opt.bits_lo + 1;
  // pair_out[p][d]: one output per example for prefill p, decode d (indices from bits_lo).
  std::vector<std::vector<std::vector<GreedyOutput>>> pair_out(static_cast<size_t>(L));
  for (auto& row : pair_out) row.resize(static_cast<size_t>(L));
  for (int i = 0; i < n; ++i) {
    for (int p = opt.bits_lo; p <= opt.bits_hi; ++p) {
      std::vector<Branch> br;
      for (int d = opt.bits_lo; d < p; ++d) br.push_back({0, d});
      auto outs = unit(opt.journal, fmt::format("pair/{}/{}", p, i), r.passes, [&](PassCount* c) {
        return generate_with_branches(tf, prompts[size_t(i)], p, fixed_schedule(p, p), br, lim, c);
      });
      const size_t pi = size_t(p - opt.bits_lo);
      pair_out[pi][pi].push_back(std::move(outs[0]));
      for (size_t j = 0; j < br.size(); ++j) pair_out[pi][size_t(br[j].bits - opt.bits_lo)].push_back(std::move(outs[j + 1]));
    }
    report("PAPAlloc (prefill x decode widths)", i + 1, n);
  }
  if (opt.reference) {
    r.reference = "16-bit model";
  } else {
    r.reference = fmt::format("{}-bit", opt.bits_hi);
    ref_out = pair_out[size_t(L - 1)][size_t(L - 1)];
  }
  if (metric == "agreement") ref_texts = texts(ref_out);
  r.reference_quality = score(ref_out);
  r.threshold = quality_threshold(r.reference_quality, opt.tolerance, opt.relative);
  for (int p = opt.bits_lo; p <= opt.bits_hi; ++p)
    for (int d = opt.bits_lo; d <= p; ++d) {
      auto& outs = pair_out[size_t(p - opt.bits_lo)][size_t(d - opt.bits_lo)];
      r.pairs.push_back({p, d, score(outs), mean_bits(outs)});
    }
  pair_out.clear();
  auto alloc = cheapest_pair(r.pairs, r.threshold);
  r.within_tolerance = bool(alloc);
  r.allocation = alloc ? *alloc : r.pairs.back();  // the (hi, hi) pair
  r.seconds_papalloc = since(t0);

  // Static search: drop one width at a time, at the cheapest step that keeps quality.
  t0 = Clock::now();
  r.schedule = fixed_schedule(r.allocation.prefill_bits, r.allocation.decode_bits);
  r.quality = r.allocation.quality;
  r.average_bits = r.allocation.average_bits;
  const std::vector<int> grid = opt.switch_steps.empty() ? default_switch_steps(task.max_new_tokens) : opt.switch_steps;
  int start = 0, cur = r.allocation.decode_bits;
  while (r.within_tolerance && cur > opt.bits_lo) {
    SwitchLevel level{cur, cur - 1, {}, std::nullopt};
    std::vector<Branch> br;
    for (int s : grid)
      if (s >= start && s < task.max_new_tokens - 1) br.push_back({s, cur - 1});
    if (br.empty()) break;
    std::vector<std::vector<GreedyOutput>> outs(br.size());
    for (int i = 0; i < n; ++i) {
      std::string id = fmt::format("switch/{}/{}/{}", r.schedule.prefill_bits, r.schedule.str(), cur - 1);
      for (auto& b : br) id += fmt::format(",{}", b.step);
      auto o = unit(opt.journal, fmt::format("{}/{}", id, i), r.passes, [&](PassCount* c) {
        return generate_with_branches(tf, prompts[size_t(i)], r.schedule.prefill_bits, r.schedule, br, lim, c);
      });
      for (size_t j = 0; j < br.size(); ++j) outs[j].push_back(std::move(o[j + 1]));
      report(fmt::format("static search {}->{} bits", cur, cur - 1), i + 1, n);
    }
    for (size_t j = 0; j < br.size(); ++j) level.candidates.push_back({br[j].step, score(outs[j]), mean_bits(outs[j])});
    level.chosen = cheapest_switch(level.candidates, r.threshold);
    r.levels.push_back(level);
    if (!level.chosen || level.chosen->average_bits >= r.average_bits) break;
    r.schedule = drop_at(r.schedule, start, level.chosen->step, cur - 1);
    r.quality = level.chosen->quality;
    r.average_bits = level.chosen->average_bits;
    start = level.chosen->step;
    --cur;
  }
  r.seconds_static = since(t0);
  r.schedule.name = r.schedule.str();
  return r;
}

}  // namespace pmpd::calib
