// Each pmpd subcommand registers its options on the shared CLI11 app and returns the
// function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

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

// Applies --threads (0: all cores).
void set_threads(int n);

}  // namespace pmpd::cli
