#include "sched/schedule_file.h"

#include "core/error.h"
#include "core/json_file.h"

namespace pmpd {

bool is_schedule_file(const std::string& spec) {
  return spec.size() > 5 && spec.compare(spec.size() - 5, 5, ".json") == 0;
}

PrecisionSchedule load_schedule_file(const std::string& path, int max_new_tokens, int prefill_bits) {
  Json j = parse_json_file(path);
  PMPD_CHECK(j.is_object(), "{}: not a schedule file (expected a JSON object)", path);
  const int file_prefill = json_get<int>(j, "prefill_bits", path);
  const std::string spec = json_get<std::string>(j, "schedule", path);
  try {
    PrecisionSchedule s = parse_schedule(spec, max_new_tokens, prefill_bits ? prefill_bits : file_prefill);
    s.name = spec;
    return s;
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace pmpd
