// llama2.c checkpoints (header, shared classifier, sizes) and tokenizer.bin.
#include "fuzz_common.h"
#include "io/llama2c.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pmpd::fuzz::scratch("model.bin");
  pmpd::fuzz::write(path, data, size);
  pmpd::fuzz::expect_clean([&] {
    pmpd::TensorSet ts;
    pmpd::read_llama2c(path, ts);
  });
  pmpd::fuzz::expect_clean([&] { pmpd::load_llama2c_tokenizer(path, 64); });
  return 0;
}
