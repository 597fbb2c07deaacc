// pmpd serve: the OpenAI-compatible server and web demo over one model.
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "sched/schedule_file.h"
#include "sched/scheduler.h"
#include "server/server.h"

namespace pmpd::cli {

namespace {
server::Server* g_server = nullptr;
extern "C" void on_signal(int) {
  if (g_server) g_server->stop();
}
}  // namespace

Action add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve an OpenAI-compatible API and the web demo");
  struct Args {
    std::string model, host = "127.0.0.1", schedule, scheduler, chat = "auto", backend = "cpu", name;
    int port = 8080, high = 0, low = 0, threads = 0, max_tokens = 128;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "Model (default: the project's model); quantized for the PMPD modes");
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--schedule", a->schedule,
                  "Mode \"pmpd\": a schedule (4:8,3) or a file from pmpd calibrate (default: first-half-high:HIGH:LOW)");
  cmd->add_option("--scheduler", a->scheduler, "Mode \"pmpd\": confidence:H:L:THRESHOLD[:PATIENCE], or learned:FILE.gguf for requests that ask for the learned scheduler");
  cmd->add_option("--high", a->high, "Width of mode \"high\" (default: the schedule's prefill width, else 4)");
  cmd->add_option("--low", a->low, "Width of mode \"low\" (default: the schedule's lowest width, else 3)");
  cmd->add_option("--max-tokens", a->max_tokens, "Default max_tokens of a request")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--chat", a->chat, "Chat template for /v1/chat/completions: auto, none, vicuna, zephyr, llama2, chatml")
      ->capture_default_str();
  cmd->add_option("--name", a->name, "Model id reported by /v1/models (default: the model's file name)");
  add_backend_option(cmd, a->backend);
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  return [a]() {
    set_threads(a->threads);
    PMPD_CHECK(a->schedule.empty() || a->scheduler.empty() || a->scheduler.rfind("learned:", 0) == 0,
               "give either --schedule or --scheduler confidence:..., not both");
    const std::string path = a->model.empty() ? default_model_path() : a->model;
    auto model = load_model(path);
    PMPD_CHECK(model->tokenizer, "{}: the server needs a model with a tokenizer", path);
    server::ServerConfig cfg;
    cfg.model_id = a->name.empty() ? std::filesystem::path(path).filename().string() : a->name;
    cfg.default_max_tokens = a->max_tokens;
    cfg.backend = parse_backend(a->backend);
    cfg.chat = a->chat == "auto" ? detect_chat_template(model->tokenizer->chat_template) : chat_template_from_name(a->chat);
    if (model->quantized()) {
      const int lo = model->quant.bits_min, hi = model->quant.bits_max;
      int high = 4, low = 3;
      const bool learned = a->scheduler.rfind("learned:", 0) == 0;
      if (learned) cfg.learned = a->scheduler;
      cfg.schedule = !a->scheduler.empty() && !learned ? a->scheduler : a->schedule;
      if (!a->schedule.empty()) {  // the schedule's own widths
        PrecisionSchedule s = is_schedule_file(a->schedule) ? load_schedule_file(a->schedule, a->max_tokens)
                                                             : parse_schedule(a->schedule, a->max_tokens, 0);
        high = s.prefill_bits;
        low = s.segments.back().first;
      }
      cfg.high_bits = a->high ? a->high : std::clamp(high, lo, hi);
      cfg.low_bits = a->low ? a->low : std::clamp(low, lo, hi);
      PMPD_CHECK(cfg.high_bits >= lo && cfg.high_bits <= hi && cfg.low_bits >= lo && cfg.low_bits <= hi,
                 "--high {} / --low {} must lie in the file's {}..{}", cfg.high_bits, cfg.low_bits, lo, hi);
      if (cfg.schedule.empty()) cfg.schedule = fmt::format("first-half-high:{}:{}", cfg.high_bits, cfg.low_bits);
      for (const std::string& spec : {cfg.schedule, cfg.learned})  // fail now, not on a request
        if (!spec.empty())
          for (int b : make_scheduler(spec, a->max_tokens, 0, hi)->widths())
            PMPD_CHECK(b >= lo && b <= hi, "scheduler \"{}\" uses {} bits; {} holds {} to {}", spec, b, path, lo, hi);
    } else {
      std::fprintf(stderr, "note: %s is 16-bit; every mode runs at 16 bits (quantize it for PMPD)\n", path.c_str());
    }
    server::Server srv(*model, cfg);
    const int port = srv.bind(a->host, a->port);
    g_server = &srv;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::fprintf(stderr, "pmpd serve: %s on http://%s:%d/ (API: /v1/completions, /v1/chat/completions, /v1/models, /health, /metrics)\n",
                 cfg.model_id.c_str(), a->host.c_str(), port);
    std::fflush(stderr);
    srv.listen();
    g_server = nullptr;
    std::fprintf(stderr, "pmpd serve: stopped\n");
    return 0;
  };
}

}  // namespace pmpd::cli
