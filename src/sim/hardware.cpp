#include "sim/hardware.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"

namespace pmpd::sim {

double Hardware::mac_rate(int bits) const {
  auto it = macs_per_cycle.lower_bound(bits);
  PMPD_CHECK(it != macs_per_cycle.end(), "{}: no MAC rate for {}-bit weights or wider", name, bits);
  return it->second * clock_ghz * 1e9;
}

double Hardware::attention_mac_rate() const {
  return attention_macs_per_cycle > 0 ? attention_macs_per_cycle * clock_ghz * 1e9 : mac_rate(16);
}

Hardware hardware_from_json_text(const std::string& text, const std::string& what) {
  Json j = Json::parse(text, nullptr, false);
  PMPD_CHECK(!j.is_discarded() && j.is_object(), "{}: not a JSON object", what);
  Hardware h;
  auto num = [&](const char* key, double def, bool required) {
    if (!j.contains(key)) {
      PMPD_CHECK(!required, "{}: missing \"{}\"", what, key);
      return def;
    }
    PMPD_CHECK(j[key].is_number(), "{}: \"{}\" must be a number", what, key);
    double v = j[key].get<double>();
    PMPD_CHECK(std::isfinite(v) && v >= 0, "{}: \"{}\" must be finite and >= 0", what, key);
    return v;
  };
  auto str = [&](const char* key, const std::string& def) {
    if (!j.contains(key)) return def;
    PMPD_CHECK(j[key].is_string(), "{}: \"{}\" must be a string", what, key);
    return j[key].get<std::string>();
  };
  h.name = str("name", what);  // found by fuzz_jobs: a number here threw past the error path
  h.source = str("source", "");
  h.bandwidth_gbs = num("bandwidth_gbs", 0, true);
  PMPD_CHECK(h.bandwidth_gbs > 0, "{}: bandwidth_gbs must be > 0", what);
  h.clock_ghz = num("clock_ghz", 1, false);
  PMPD_CHECK(h.clock_ghz > 0, "{}: clock_ghz must be > 0", what);
  h.table_buffer_kib = num("table_buffer_kib", 0, false);
  h.attention_macs_per_cycle = num("attention_macs_per_cycle", 0, false);
  h.op_overhead_us = num("op_overhead_us", 0, false);
  h.extra_ops_per_layer = int(num("extra_ops_per_layer", 0, false));
  h.extra_ops_per_layer_16 = int(num("extra_ops_per_layer_16", h.extra_ops_per_layer, false));
  h.token_overhead_us = num("token_overhead_us", 0, false);
  h.prompt_layer_overhead_us = num("prompt_layer_overhead_us", 0, false);
  h.kv_bits = int(num("kv_bits", 16, false));
  if (j.contains("prompt_dequantizes")) {
    PMPD_CHECK(j["prompt_dequantizes"].is_boolean(), "{}: \"prompt_dequantizes\" must be true or false", what);
    h.prompt_dequantizes = j["prompt_dequantizes"].get<bool>();
  }
  PMPD_CHECK(h.kv_bits >= 1 && h.kv_bits <= 32, "{}: kv_bits must be 1..32", what);
  PMPD_CHECK(j.contains("macs_per_cycle") && j["macs_per_cycle"].is_object() && !j["macs_per_cycle"].empty(),
             "{}: \"macs_per_cycle\" must map widths (\"2\".. \"8\", \"16\") to MACs a cycle", what);
  for (auto& [k, v] : j["macs_per_cycle"].items()) {
    char* end = nullptr;
    long bits = std::strtol(k.c_str(), &end, 10);
    PMPD_CHECK(end && *end == '\0' && bits >= 1 && bits <= 16, "{}: macs_per_cycle key \"{}\" is not a width 1..16", what, k);
    PMPD_CHECK(v.is_number() && v.get<double>() > 0, "{}: macs_per_cycle[{}] must be a number > 0", what, k);
    h.macs_per_cycle[int(bits)] = v.get<double>();
  }
  PMPD_CHECK(h.macs_per_cycle.count(16), "{}: macs_per_cycle needs an entry for \"16\" (the baseline)", what);
  return h;
}

Hardware load_hardware(const std::string& name_or_path) {
  std::string path = name_or_path;
  if (!std::filesystem::exists(path)) {
    const std::string shipped = std::string(PMPD_SOURCE_DIR) + "/hw/" + name_or_path + ".json";
    PMPD_CHECK(std::filesystem::exists(shipped), "--hw {}: no such file, and no shipped description hw/{}.json",
               name_or_path, name_or_path);
    path = shipped;
  }
  return hardware_from_json_text(read_text_file(path), path);
}

}  // namespace pmpd::sim
