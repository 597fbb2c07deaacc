// Each pmpd subcommand registers its options on the shared CLI11 app and returns the
// function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

#include "model/model_loader.h"

namespace pmpd::cli {

using Action = std::function<int()>;

Action add_run(CLI::App& app);
Action add_info(CLI::App& app);
Action add_convert(CLI::App& app);
Action add_quantize(CLI::App& app);
Action add_perplexity(CLI::App& app);
Action add_patterns(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_calibrate(CLI::App& app);
Action add_serve(CLI::App& app);
Action add_train_scheduler(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_simulate(CLI::App& app);

// Adds --backend (cpu or cuda) bound to `backend`.
void add_backend_option(CLI::App* cmd, std::string& backend);

// Applies --threads (0: all cores).
void set_threads(int n);

// Loads a model that must be quantized (by pmpd quantize) and have a tokenizer; `purpose`
// completes the error message ("calibration chooses widths of a quantized model").
std::unique_ptr<Model> load_quantized(const std::string& path, const std::string& purpose);

}  // namespace pmpd::cli
