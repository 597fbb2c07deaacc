// pmpd simulate: replays a generation (a schedule or a `pmpd run --json` trace) on a
// modelled dataflow accelerator and reports time, bytes moved and the speedup over the
// same hardware at 16 bits (docs/simulator.md).
#include <fmt/format.h>

#include <fstream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "model/synthetic.h"
#include "sched/scheduler.h"
#include "sim/simulator.h"

namespace pmpd::cli {

namespace {

struct SimArgs {
  std::string model, shape, hw, schedule, trace, json;
  int tokens = 128, prompt_tokens = 128, prefill_bits = 0, bits_max = 8;
  bool prefill_cache = false;
};

std::string mib(double b) { return fmt::format("{:.1f} MiB", b / (1 << 20)); }

int simulate_cmd(const SimArgs& a) {
  PMPD_CHECK(a.model.empty() != a.shape.empty(), "give either --model or --shape");
  PMPD_CHECK(a.schedule.empty() != a.trace.empty(), "give either --schedule or --trace");
  ModelConfig c = a.shape.empty() ? load_model(a.model)->config : synthetic_config(a.shape);
  sim::Hardware hw = sim::load_hardware(a.hw);
  hw.prefill_cache = a.prefill_cache;
  PMPD_CHECK(!a.prefill_cache || hw.prompt_dequantizes,
             "--prefill-cache: {} multiplies quantized prompts at their width (no \"prompt_dequantizes\"), so there is "
             "nothing to cache",
             hw.name);
  sim::Trace t;
  std::string what;
  if (!a.trace.empty()) {
    t = sim::trace_from_run_json(read_text_file(a.trace), a.trace);
    what = "trace " + a.trace;
  } else if (a.schedule == "16" || a.schedule == "fixed:16") {  // the 16-bit model itself
    t.prompt_tokens = a.prompt_tokens;
    t.token_bits.assign(size_t(a.tokens), 16);
    what = "16-bit weights";
  } else {
    auto s = make_scheduler(a.schedule, a.tokens, a.prefill_bits, a.bits_max);
    StaticScheduler* st = dynamic_cast<StaticScheduler*>(s.get());
    PMPD_CHECK(st, "--schedule {}: simulate replays static schedules; record a dynamic one with pmpd run --json and pass --trace",
               a.schedule);
    t.prompt_tokens = a.prompt_tokens;
    t.prefill_bits = st->prefill_bits();
    // Token 0 comes from the prompt pass, token k+1 from decode step k.
    t.token_bits.push_back(t.prefill_bits);
    for (int k = 0; k + 1 < a.tokens; ++k) t.token_bits.push_back(st->schedule().bits_at(k));
    what = "schedule " + st->describe();
  }
  PMPD_CHECK(t.prompt_tokens + int(t.token_bits.size()) <= c.max_seq_len || c.max_seq_len == 0,
             "{} prompt + {} new tokens exceed the model's context of {}", t.prompt_tokens, t.token_bits.size(), c.max_seq_len);
  sim::SimResult r = sim::simulate(c, hw, t), base = sim::simulate(c, hw, sim::as_16bit(t));
  const double speed = base.decode_seconds / r.decode_seconds;
  std::printf("# pmpd simulate: %s on %s\n\n%s; %d prompt tokens at %d bits%s, %zu generated tokens, average %.2f bits\n\n",
              a.shape.empty() ? a.model.c_str() : a.shape.c_str(), hw.name.c_str(), what.c_str(), t.prompt_tokens,
              t.prefill_bits, a.prefill_cache ? " (read from the prefill cache)" : "", t.token_bits.size(), r.average_bits);
  std::printf("| | this trace | 16-bit on the same hardware |\n|---|---|---|\n");
  std::printf("| prompt pass | %.3f ms | %.3f ms |\n", r.prefill_seconds * 1e3, base.prefill_seconds * 1e3);
  std::printf("| decode, mean per token | %.3f ms | %.3f ms |\n", r.mean_token_seconds() * 1e3, base.mean_token_seconds() * 1e3);
  std::printf("| total | %.3f ms | %.3f ms |\n", r.total_seconds * 1e3, base.total_seconds * 1e3);
  std::printf("| weights read | %s | %s |\n", mib(r.bytes.weights).c_str(), mib(base.bytes.weights).c_str());
  std::printf("| centroid tables (streamed / loaded at %d switches) | %s / %s | - |\n", r.table_switches,
              mib(r.bytes.tables).c_str(), mib(r.bytes.table_loads).c_str());
  std::printf("| KV cache read / written | %s / %s | %s / %s |\n", mib(r.bytes.kv_read).c_str(), mib(r.bytes.kv_write).c_str(),
              mib(base.bytes.kv_read).c_str(), mib(base.bytes.kv_write).c_str());
  std::printf("| LM head (16-bit) | %s | %s |\n", mib(r.bytes.head).c_str(), mib(base.bytes.head).c_str());
  if (r.bytes.dequantized > 0)
    std::printf("| prompt pass: 16-bit weights dequantized (written + read) | %s | - |\n", mib(r.bytes.dequantized).c_str());
  std::printf("| bandwidth utilisation | %.0f%% | %.0f%% |\n", 100 * r.bandwidth_utilization, 100 * base.bandwidth_utilization);
  std::printf("| operator time bound by memory | %.0f%% | %.0f%% |\n", 100 * r.memory_bound_fraction,
              100 * base.memory_bound_fraction);
  std::printf("\ndecode speedup over 16-bit: %.2fx (end to end, prompt included: %.2fx)\n", speed,
              base.total_seconds / r.total_seconds);
  if (!a.json.empty()) {
    Json j = {{"hardware", hw.name},
              {"model", a.shape.empty() ? a.model : a.shape},
              {"average_bits", r.average_bits},
              {"prefill_seconds", r.prefill_seconds},
              {"decode_seconds", r.decode_seconds},
              {"mean_token_seconds", r.mean_token_seconds()},
              {"token_seconds", r.token_seconds},
              {"total_seconds", r.total_seconds},
              {"bytes",
               {{"weights", r.bytes.weights}, {"tables", r.bytes.tables}, {"table_loads", r.bytes.table_loads},
                {"kv_read", r.bytes.kv_read}, {"kv_write", r.bytes.kv_write}, {"head", r.bytes.head},
                {"dequantized", r.bytes.dequantized}}},
              {"table_switches", r.table_switches},
              {"bandwidth_utilization", r.bandwidth_utilization},
              {"baseline_16bit", {{"decode_seconds", base.decode_seconds}, {"total_seconds", base.total_seconds},
                                  {"mean_token_seconds", base.mean_token_seconds()}}},
              {"decode_speedup", speed},
              {"prefill_cache", a.prefill_cache}};
    write_file_atomic(a.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Action add_simulate(CLI::App& app) {
  auto* cmd = app.add_subcommand("simulate", "Replay a generation on a modelled dataflow accelerator (speedup over 16-bit)");
  auto a = std::make_shared<SimArgs>();
  cmd->add_option("-m,--model", a->model, "A model file or directory (only its shape is used)");
  cmd->add_option("--shape", a->shape, "A named shape: vicuna-7b, mobilellama-1.4b, phi-1.5, zephyr-3b, tiny");
  cmd->add_option("--hw", a->hw, "Hardware description: a JSON file, or a shipped one (edge-npu-lpddr5, datacenter-hbm3, h100-pmpd, h200-pmpd, cpu-dev-vm)")
      ->required();
  cmd->add_option("--schedule", a->schedule, "A static schedule (4:32,3, fixed:3, a preset or a calibrated schedule file; 16: the 16-bit model)");
  cmd->add_option("--trace", a->trace, "Per-token widths recorded by pmpd run --json");
  cmd->add_option("-n,--tokens", a->tokens, "Generated tokens, with --schedule")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--prompt-tokens", a->prompt_tokens, "Prompt length, with --schedule")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--prefill-bits", a->prefill_bits, "Prompt width (default: the schedule's first width)")->check(CLI::Range(0, 16));
  cmd->add_option("--json", a->json, "Also write the results (with every token's time) as JSON");
  cmd->add_flag("--prefill-cache", a->prefill_cache,
                "The engine keeps its dequantized 16-bit rows (pmpd --prefill-cache): a quantized prompt pass runs as a "
                "16-bit one (hardware with \"prompt_dequantizes\" only)");
  return [a]() { return simulate_cmd(*a); };
}

}  // namespace pmpd::cli
