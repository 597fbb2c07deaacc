// A calibrated schedule on disk: the JSON file `pmpd calibrate` writes. Readers need only
// its "prefill_bits" and "schedule" fields; the rest records how it was found
// (docs/format.md). `--schedule FILE.json` in run and eval loads it.
#pragma once
#include <string>

#include "sched/schedule.h"

namespace pmpd {

bool is_schedule_file(const std::string& spec);  // names a .json file
// Throws pmpd::Error naming the file and the problem. A non-zero prefill_bits overrides the file's.
PrecisionSchedule load_schedule_file(const std::string& path, int max_new_tokens, int prefill_bits = 0);

}  // namespace pmpd
