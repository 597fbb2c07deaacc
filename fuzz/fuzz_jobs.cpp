// The small files that drive long jobs and the simulator: schedule files (pmpd calibrate's
// output), task files, hardware descriptions, run traces, and schedule specs.
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
  return 0;
}
