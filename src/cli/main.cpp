// pmpd: one binary, subcommands like git. Every user error ends as one line on stderr
// ("pmpd: error: ...") and exit status 1.
#include <cstdio>
#include <map>
#include <omp.h>

#include "cli/commands.h"
#include "core/error.h"
#include "model/cuda_model.h"

namespace pmpd::cli {
void set_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

void add_backend_option(CLI::App* cmd, std::string& backend) {
  cmd->add_option("--backend", backend, "Where the forward pass runs: cpu, or cuda (the whole model on the GPU)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  CLI::Option* cache = cmd->add_flag_callback(
      "--prefill-cache", [] { cuda::set_prefill_cache(true); },
      "--backend cuda: keep each quantized matrix dequantized to f16 at the prompt's width, so prompts after the "
      "first at that width run as fast as with 16-bit weights (2 bytes a weight of GPU memory more; it stops "
      "growing where less than 2 GiB would stay free; docs/cuda.md)");
  // The CPU backend multiplies quantized prompts from the planes directly: nothing to cache,
  // and a flag that silently does nothing would mislead.
  cmd->parse_complete_callback([cache, &backend] {
    if (cache->count() > 0 && backend != "cuda")
      throw CLI::ValidationError("--prefill-cache", "needs --backend cuda (the CPU backend has no dequantized copy to keep)");
  });
}

std::unique_ptr<Model> load_quantized(const std::string& path, const std::string& purpose) {
  auto m = load_model(path);
  PMPD_CHECK(m->quantized(), "{}: {}; quantize it first", path, purpose);
  PMPD_CHECK(m->tokenizer, "{}: no tokenizer", path);
  return m;
}
}  // namespace pmpd::cli

int main(int argc, char** argv) {
  CLI::App app{"pmpd: progressive mixed-precision decoding for LLMs", "pmpd"};
  app.set_version_flag("--version", std::string("pmpd ") + PMPD_VERSION);
  app.require_subcommand(1);
  std::map<std::string, pmpd::cli::Action> actions;
  actions["run"] = pmpd::cli::add_run(app);
  actions["info"] = pmpd::cli::add_info(app);
  actions["convert"] = pmpd::cli::add_convert(app);
  actions["quantize"] = pmpd::cli::add_quantize(app);
  actions["perplexity"] = pmpd::cli::add_perplexity(app);
  actions["patterns"] = pmpd::cli::add_patterns(app);
  actions["eval"] = pmpd::cli::add_eval(app);
  actions["calibrate"] = pmpd::cli::add_calibrate(app);
  actions["serve"] = pmpd::cli::add_serve(app);
  actions["train-scheduler"] = pmpd::cli::add_train_scheduler(app);
  actions["bench"] = pmpd::cli::add_bench(app);
  actions["simulate"] = pmpd::cli::add_simulate(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands()) return actions.at(sub->get_name())();
  } catch (const pmpd::Error& e) {
    std::fprintf(stderr, "pmpd: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "pmpd: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pmpd: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
