// A Hugging Face directory: config.json fixed, model.safetensors from the input (header
// and data), then the model binding; and the input as a sharded index.
#include <fstream>

#include "fuzz_common.h"
#include "io/safetensors.h"
#include "model/model_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = pmpd::fuzz::scratch("hf");
    std::filesystem::create_directories(d);
    std::ofstream(d + "/config.json") << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
      "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
      "num_key_value_heads": 2, "vocab_size": 16, "max_position_embeddings": 32})";
    return d;
  }();
  pmpd::fuzz::write(dir + "/model.safetensors", data, size);
  pmpd::fuzz::expect_clean([&] {
    pmpd::TensorSet ts;
    pmpd::read_safetensors(dir + "/model.safetensors", ts);
  });
  pmpd::fuzz::expect_clean([&] { pmpd::load_model(dir); });
  static const std::string index = pmpd::fuzz::scratch("model.safetensors.index.json");
  pmpd::fuzz::write(index, data, size);
  pmpd::fuzz::expect_clean([&] {
    pmpd::TensorSet ts;
    pmpd::read_safetensors_index(index, ts);
  });
  return 0;
}
