#include "sched/schedule.h"

#include <fmt/format.h>

#include <cstdlib>

#include "core/error.h"

namespace pmpd {

int PrecisionSchedule::bits_at(int step) const {
  for (auto& [bits, steps] : segments) {
    if (step < steps) return bits;
    step -= steps;
  }
  return segments.empty() ? 0 : segments.back().first;
}

bool PrecisionSchedule::non_increasing() const {
  for (size_t i = 1; i < segments.size(); ++i)
    if (segments[i].first > segments[i - 1].first) return false;
  return true;
}

std::string PrecisionSchedule::str() const {
  std::string s;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i) s += ",";
    s += i + 1 < segments.size() ? fmt::format("{}:{}", segments[i].first, segments[i].second)
                                 : std::to_string(segments[i].first);
  }
  return s;
}

PrecisionSchedule fixed_schedule(int prefill_bits, int decode_bits) {
  PrecisionSchedule s;
  s.prefill_bits = prefill_bits;
  s.segments = {{decode_bits, 1}};
  return s;
}

namespace {

int parse_int(const std::string& s, const std::string& spec) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  PMPD_CHECK(!s.empty() && end && *end == '\0' && v >= 0 && v < (1L << 30), "schedule \"{}\": \"{}\" is not a number",
             spec, s);
  return int(v);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

void check_bits(int b, const std::string& spec) {
  PMPD_CHECK(b >= 1 && b <= 16, "schedule \"{}\": width {} outside 1..16", spec, b);
}

}  // namespace

PrecisionSchedule parse_schedule(const std::string& spec, int max_new_tokens, int prefill_bits) {
  PrecisionSchedule s;
  s.name = spec;
  s.prefill_bits = prefill_bits;
  PMPD_CHECK(!spec.empty(), "empty schedule");
  auto parts = split(spec, ':');
  const std::string& kind = parts[0];
  // Presets span the decode steps: the first generated token comes from the prefill.
  const int n = std::max(max_new_tokens - 1, 1), half = n / 2, quarter = n / 4;
  auto hl = [&](size_t need_min, size_t need_max) {
    PMPD_CHECK(parts.size() >= need_min && parts.size() <= need_max, "schedule \"{}\": expected {}:HIGH:LOW", spec, kind);
    int h = parse_int(parts[1], spec), l = parse_int(parts[2], spec);
    check_bits(h, spec), check_bits(l, spec);
    return std::pair{h, l};
  };
  if (kind == "fixed") {
    PMPD_CHECK(parts.size() == 2, "schedule \"{}\": expected fixed:B", spec);
    int b = parse_int(parts[1], spec);
    check_bits(b, spec);
    s.segments = {{b, 1}};
    if (!s.prefill_bits) s.prefill_bits = b;
  } else if (kind == "first-half-high") {
    auto [h, l] = hl(3, 3);
    s.segments = {{h, half}, {l, 1}};
  } else if (kind == "last-half-high") {
    auto [h, l] = hl(3, 3);
    s.segments = {{l, n - half}, {h, 1}};
  } else if (kind == "middle-half-high") {
    auto [h, l] = hl(3, 3);
    s.segments = {{l, quarter}, {h, half}, {l, 1}};
  } else if (kind == "alternate") {
    auto [h, l] = hl(3, 4);
    int period = parts.size() == 4 ? parse_int(parts[3], spec) : 1;
    PMPD_CHECK(period >= 1, "schedule \"{}\": period must be >= 1", spec);
    for (int i = 0; i < n; i += period) s.segments.push_back({(i / period) % 2 ? l : h, period});
    s.segments.push_back({(n / period) % 2 ? l : h, 1});
  } else {
    // "4:32,3:96,2" or a single width "3".
    for (auto& seg : split(spec, ',')) {
      auto bc = split(seg, ':');
      PMPD_CHECK(bc.size() == 1 || bc.size() == 2, "schedule \"{}\": segment \"{}\" is not BITS:STEPS", spec, seg);
      int b = parse_int(bc[0], spec);
      check_bits(b, spec);
      int steps = bc.size() == 2 ? parse_int(bc[1], spec) : 1;
      s.segments.push_back({b, steps});
    }
    auto segs = split(spec, ',');
    for (size_t i = 0; i + 1 < segs.size(); ++i)
      PMPD_CHECK(segs[i].find(':') != std::string::npos, "schedule \"{}\": only the last segment may omit :STEPS", spec);
    PMPD_CHECK(s.non_increasing(), "schedule \"{}\" raises the precision; PMPD schedules are non-increasing", spec);
  }
  if (!s.prefill_bits) s.prefill_bits = s.segments.front().first;
  check_bits(s.prefill_bits, spec);
  return s;
}

}  // namespace pmpd
