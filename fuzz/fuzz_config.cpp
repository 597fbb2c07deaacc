// config.json of every architecture family.
#include "core/json_file.h"
#include "fuzz_common.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  pmpd::fuzz::expect_clean([&] {
    pmpd::Json j = pmpd::parse_json_text(text, "config.json");
    pmpd::ModelConfig c = pmpd::config_from_hf(j, "config.json");
    pmpd::validate_config(c, "config.json");
  });
  return 0;
}
