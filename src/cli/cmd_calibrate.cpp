// pmpd calibrate: the offline stage of PMPD on a task's calibration split. Prints the
// PAPAlloc table (every prefill/decode pair) and the static switch search, and writes the
// schedule file that `run --schedule` and `eval --schedule` use.
#include <fmt/format.h>

#include "calib/calibrate.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"

namespace pmpd::cli {

namespace {

std::vector<int> parse_steps(const std::string& s) {
  std::vector<int> steps;
  for (size_t pos = 0; pos < s.size();) {
    size_t end = std::min(s.find(',', pos), s.size());
    std::string t = s.substr(pos, end - pos);
    char* e = nullptr;
    long v = std::strtol(t.c_str(), &e, 10);
    PMPD_CHECK(!t.empty() && e && *e == '\0' && v >= 0 && v < (1L << 20), "--steps: \"{}\" is not a decode step", t);
    PMPD_CHECK(steps.empty() || v > steps.back(), "--steps must be increasing (\"{}\")", s);
    steps.push_back(int(v));
    pos = end + 1;
  }
  return steps;
}

Json result_json(const calib::CalibResult& r, const std::string& model, const eval::Task& task, const std::string& split,
                 int examples, const std::string& metric, double tolerance, bool relative) {
  Json pairs = Json::array(), levels = Json::array();
  for (auto& p : r.pairs)
    pairs.push_back({{"prefill_bits", p.prefill_bits}, {"decode_bits", p.decode_bits}, {"quality", p.quality},
                     {"average_bits", p.average_bits}});
  for (auto& l : r.levels) {
    Json c = Json::array();
    for (auto& s : l.candidates) c.push_back({{"step", s.step}, {"quality", s.quality}, {"average_bits", s.average_bits}});
    levels.push_back({{"from_bits", l.from_bits}, {"to_bits", l.to_bits}, {"candidates", c},
                      {"chosen_step", l.chosen ? Json(l.chosen->step) : Json(nullptr)}});
  }
  return {{"format", "pmpd.schedule.v1"},
          {"prefill_bits", r.schedule.prefill_bits},
          {"schedule", r.schedule.str()},
          {"quality", r.quality},
          {"average_bits", r.average_bits},
          {"model", model},
          {"task", task.name},
          {"split", split},
          {"examples", examples},
          {"metric", metric},
          {"tolerance", tolerance},
          {"tolerance_relative", relative},
          {"reference", r.reference},
          {"reference_quality", r.reference_quality},
          {"threshold", r.threshold},
          {"within_tolerance", r.within_tolerance},
          {"papalloc", {{"prefill_bits", r.allocation.prefill_bits}, {"decode_bits", r.allocation.decode_bits}, {"pairs", pairs}}},
          {"switch_search", levels},
          {"seconds", {{"reference", r.seconds_reference}, {"papalloc", r.seconds_papalloc}, {"static", r.seconds_static}}},
          {"forward_passes", {{"run", r.passes.passes}, {"without_sharing", r.passes.without_sharing}}}};
}

}  // namespace

Action add_calibrate(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Choose prefill/decode widths (PAPAlloc) and switch steps (static scheduler) on a task's calibration split");
  cmd->footer("Interrupted (Ctrl-C, a kill)? Run the same command again: finished generations are read back from "
              "OUT.journal, and the schedule equals an uninterrupted run's.");
  struct Args {
    std::string model, task, split = "calibration", data, out, bits, metric, reference, steps;
    double tolerance = 0.02;
    bool points = false;
    int limit = 100, threads = 0;
    std::string backend = "cpu";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "Quantized model (.gguf from pmpd quantize, anyprec)")->required();
  cmd->add_option("--task", a->task, "Task file (tasks/*.json; docs/tasks.md)")->required();
  cmd->add_option("-o,--out", a->out, "Schedule file to write (JSON; run/eval --schedule read it)")->required();
  cmd->add_option("--split", a->split, "Split to calibrate on (keep the test split for reporting)")->capture_default_str();
  cmd->add_option("--limit", a->limit, "Examples to use (0: all)")->capture_default_str()->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--data", a->data, "JSONL file replacing the split's data file");
  cmd->add_option("--tolerance", a->tolerance,
                  "Allowed quality loss: a fraction of the reference quality (0.02 = 2%), or points with --points")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9));
  cmd->add_flag("--points", a->points, "Read --tolerance in metric points (e.g. 0.5 SacreBLEU) instead of a fraction");
  cmd->add_option("--metric", a->metric, "Metric held within the tolerance (default: the task's first; 'agreement': "
                                         "ROUGE-L against the reference's outputs)");
  cmd->add_option("--bits", a->bits, "Widths searched, LO:HI (default: all the file holds)");
  cmd->add_option("--reference", a->reference, "16-bit model as the quality reference (default: the highest width)");
  cmd->add_option("--steps", a->steps, "Candidate switch steps, e.g. 0,2,4,8,16 (default: 0,1,2,3,4,6,8,12,16,...)");
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_backend_option(cmd, a->backend);
  return [a]() {
    set_threads(a->threads);
    eval::Task task = eval::load_task(a->task);
    std::vector<eval::Example> examples = eval::load_examples(task, a->split, a->limit, a->data);
    auto q = load_quantized(a->model, "calibration chooses widths of a quantized model");
    std::unique_ptr<Model> ref;
    if (!a->reference.empty()) {
      ref = load_model(a->reference);
      PMPD_CHECK(!ref->quantized(), "--reference {}: expected the 16-bit model", a->reference);
    }
    calib::CalibOptions opt;
    std::tie(opt.bits_lo, opt.bits_hi) =
        a->bits.empty() ? std::pair{q->quant.bits_min, q->quant.bits_max} : parse_bit_range(a->bits);
    opt.metric = a->metric.empty() ? task.metrics.front() : a->metric;
    opt.tolerance = a->tolerance;
    opt.relative = !a->points;
    opt.reference = ref.get();
    opt.backend = parse_backend(a->backend);
    if (!a->steps.empty()) opt.switch_steps = parse_steps(a->steps);
    Tokenizer tok(*q->tokenizer);
    // Finished generations go to OUT.journal as they complete; a rerun after a kill or
    // Ctrl-C reads them back. The key holds everything that changes a generation.
    std::string key = fmt::format("calibrate v1|{}|{}|{}|{}|{}|{}", file_fingerprint(a->model),
                                  a->reference.empty() ? "" : file_fingerprint(a->reference), a->backend,
                                  task.max_new_tokens, Json(task.stop).dump(), tok.add_bos_default());
    size_t prompts_hash = 0;
    for (auto& e : examples) prompts_hash = prompts_hash * 1000003u ^ std::hash<std::string>{}(e.prompt);
    key += fmt::format("|{} prompts {:016x}", examples.size(), prompts_hash);
    Journal journal(a->out + ".journal", key);
    if (journal.resumed())
      std::fprintf(stderr, "%s: resuming, %zu finished units reused\n", journal.path().c_str(), journal.resumed());
    opt.journal = &journal;
    std::string stage;
    std::unique_ptr<Progress> bar;
    auto progress = [&](const std::string& s, int done, int total) {
      if (s != stage) stage = s, bar = std::make_unique<Progress>(s);
      bar->update(done, total, "");
    };
    calib::CalibResult r = calib::calibrate(*q, tok, task, examples, opt, progress);

    std::string tol = a->points ? fmt::format("{} points", a->tolerance) : fmt::format("{:.1f}%", 100 * a->tolerance);
    std::printf("Task %s (%s, %zu examples), metric %s, tolerance %s of the %s reference (%.2f): threshold %.2f\n\n",
                task.name.c_str(), a->split.c_str(), examples.size(), opt.metric.c_str(), tol.c_str(),
                r.reference.c_str(), r.reference_quality, r.threshold);
    std::printf("PAPAlloc (%.1f s)\n| prefill | decode | %s | average bits | within |\n|---|---|---|---|---|\n",
                r.seconds_papalloc, opt.metric.c_str());
    for (auto& p : r.pairs)
      std::printf("| %d | %d | %.2f | %.2f | %s |\n", p.prefill_bits, p.decode_bits, p.quality, p.average_bits,
                  p.quality >= r.threshold ? "yes" : "");
    if (!r.within_tolerance)
      std::fprintf(stderr, "warning: no pair reaches the threshold; using the highest width\n");
    std::printf("\nchosen: prefill %d, decode %d\n", r.allocation.prefill_bits, r.allocation.decode_bits);
    std::printf("\nStatic switch search (%.1f s)\n", r.seconds_static);
    for (auto& l : r.levels) {
      std::printf("| %d -> %d from step | %s | average bits |\n|---|---|---|\n", l.from_bits, l.to_bits, opt.metric.c_str());
      for (auto& c : l.candidates)
        std::printf("| %d%s | %.2f | %.2f |\n", c.step, l.chosen && l.chosen->step == c.step ? " (chosen)" : "",
                    c.quality, c.average_bits);
      if (!l.chosen) std::printf("(no drop stays within the tolerance)\n");
      std::printf("\n");
    }
    std::printf("schedule: prefill %d, %s: %s %.2f at %.2f average bits\n", r.schedule.prefill_bits,
                r.schedule.str().c_str(), opt.metric.c_str(), r.quality, r.average_bits);
    std::printf("forward passes: %lld (%lld without sharing prefixes, %.1fx saved)\n", r.passes.passes,
                r.passes.without_sharing, double(r.passes.without_sharing) / double(std::max(1LL, r.passes.passes)));
    write_file_atomic(a->out, result_json(r, a->model, task, a->split, int(examples.size()), opt.metric, a->tolerance,
                                          opt.relative).dump(1) + "\n");
    journal.remove();
    std::fprintf(stderr, "wrote %s\n", a->out.c_str());
    return 0;
  };
}

}  // namespace pmpd::cli
