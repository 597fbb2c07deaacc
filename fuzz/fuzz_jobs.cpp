// The small files that drive long jobs and the simulator: schedule files (pmpd calibrate's
// output), task files, hardware descriptions, run traces, schedule specs, and what resumed
// jobs read back: journals (calibrate, quantize) and train-scheduler's dataset cache.
#include <cstring>

#include "calib/scheduler_training.h"
#include "core/journal.h"
#include "core/mapped_file.h"
#include "eval/task.h"
#include "fuzz_common.h"
#include "sched/schedule.h"
#include "sched/schedule_file.h"
#include "sim/hardware.h"
#include "sim/simulator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pmpd::fuzz::scratch("job.json");
  pmpd::fuzz::write(path, data, size);
  const std::string text(reinterpret_cast<const char*>(data), size);
  pmpd::fuzz::expect_clean([&] { pmpd::load_schedule_file(path, 64); });
  pmpd::fuzz::expect_clean([&] { pmpd::eval::load_task(path); });
  pmpd::fuzz::expect_clean([&] { pmpd::sim::hardware_from_json_text(text, "hw"); });
  pmpd::fuzz::expect_clean([&] { pmpd::sim::trace_from_run_json(text, "trace"); });
  pmpd::fuzz::expect_clean([&] { pmpd::parse_schedule(text, 64, 0); });
  // A journal: a matching key line, then the input as its records.
  static const std::string journal = pmpd::fuzz::scratch("job.journal");
  const std::string lines = "{\"key\":\"k\"}\n" + text;
  pmpd::fuzz::write(journal, reinterpret_cast<const uint8_t*>(lines.data()), lines.size());
  pmpd::fuzz::expect_clean([&] {
    pmpd::Journal j(journal, "k");
    for (size_t i = 0; i < 4; ++i) j.find(std::to_string(i));
  });
  // The dataset cache: a valid header with key "k", then the input as its records.
  static const std::string dataset = pmpd::fuzz::scratch("job.dataset");
  std::string bin("PMPDSWDS", 8);
  const int32_t version = 1, klen = 1;
  bin.append(reinterpret_cast<const char*>(&version), 4).append(reinterpret_cast<const char*>(&klen), 4).append("k");
  bin.append(text);
  pmpd::fuzz::write(dataset, reinterpret_cast<const uint8_t*>(bin.data()), bin.size());
  pmpd::fuzz::expect_clean([&] { pmpd::calib::read_dataset(dataset, "k"); });
  return 0;
}
