// GGUF files, pmpd's quantized extensions included: the reader, then the model binding
// (config, tensors, bit planes, tables, outliers, tokenizer in the metadata).
#include "fuzz_common.h"
#include "model/model_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pmpd::fuzz::scratch("model.gguf");
  pmpd::fuzz::write(path, data, size);
  pmpd::fuzz::expect_clean([&] { pmpd::read_gguf(path); });
  pmpd::fuzz::expect_clean([&] { pmpd::load_model(path); });
  return 0;
}
