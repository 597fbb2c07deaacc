// pmpd quantize: a 16-bit checkpoint -> one nested any-precision GGUF file.
#include <fmt/format.h>

#include <chrono>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "quant/quantize_model.h"

namespace pmpd::cli {

std::pair<int, int> parse_bit_range(const std::string& s) {
  int lo = 0, hi = 0;
  char extra = 0;
  if (std::sscanf(s.c_str(), "%d:%d%c", &lo, &hi, &extra) == 2 || (std::sscanf(s.c_str(), "%d%c", &lo, &extra) == 1 && (hi = lo)))
    if (lo >= 1 && lo <= hi && hi <= 8) return {lo, hi};
  fail("bits \"{}\" must be B or MIN:MAX with 1 <= MIN <= MAX <= 8", s);
}

Action add_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Quantize a 16-bit model into nested bit planes (every width in one file)");
  cmd->footer("Interrupted (Ctrl-C, a kill)? Run the same command again: the layers already written to OUT.tmp "
              "(logged in OUT.tmp.journal) are kept, and the output equals an uninterrupted run's.");
  struct Args {
    std::string model, out, bits = "2:8", method = "anyprec", calib;
    int calib_tokens = 4096, threads = 0;
    double sparse = 0.0045;
    int group = 128;
    uint64_t seed = 1;
    bool head = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "16-bit model: HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("-o,--output", a->out, "Output .gguf")->required();
  cmd->add_option("--bits", a->bits, "Width range MIN:MAX for anyprec (default 2:8), or B for uniform")->capture_default_str();
  cmd->add_option("--method", a->method, "anyprec (nested, non-uniform), uniform (round-to-nearest baseline) or dns (anyprec + exact outliers)")
      ->capture_default_str()->check(CLI::IsMember({"anyprec", "uniform", "dns"}));
  cmd->add_option("--group", a->group, "uniform: columns per scale and zero point (0: one per row; else a multiple of 64)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--sparse-fraction", a->sparse, "dns: share of weights kept exactly as sparse outliers")
      ->capture_default_str()->check(CLI::Range(0.0, 0.5));
  cmd->add_option("--calib", a->calib, "Calibration text (.txt, or .jsonl with text fields); default: built-in text");
  cmd->add_option("--calib-tokens", a->calib_tokens, "Calibration tokens to use")->capture_default_str()->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--seed", a->seed, "Seed of the k-means initialisation")->capture_default_str();
  cmd->add_flag("--quantize-head", a->head,
               "Quantize the LM head too (default: 16-bit); it then runs at each step's width. A tied head is "
               "stored as its own tensor, the embedding stays 16-bit");
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  return [a]() {
    set_threads(a->threads);
    auto [lo, hi] = parse_bit_range(a->bits);
    auto m = load_model(a->model);
    quant::QuantizeOptions opt;
    opt.method = a->method, opt.bits_min = lo, opt.bits_max = hi, opt.calib_path = a->calib;
    opt.calib_tokens = a->calib_tokens, opt.seed = a->seed, opt.sparse_fraction = a->sparse, opt.group_size = a->group;
    opt.quantize_head = a->head;
    Progress bar("quantize");
    opt.progress = [&](int done, int total, const std::string& name) { bar.update(done, total, name); };
    opt.resumed = [&](int kept, int total) {
      fmt::print(stderr, "{}.tmp: resuming an interrupted run, {} of {} layers already written\n", a->out, kept, total);
    };
    auto t0 = std::chrono::steady_clock::now();
    quant::quantize_model(*m, a->out, opt);
    fmt::print(stderr, "wrote {} ({}, bits {}:{}) in {:.1f} s\n", a->out, a->method, lo, hi,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
  };
}

}  // namespace pmpd::cli
