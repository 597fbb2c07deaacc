// pmpd convert: any supported checkpoint -> GGUF (F32, F16 or BF16).
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "model/gguf_export.h"

namespace pmpd::cli {

Action add_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "Convert a checkpoint (HF directory, GGUF, llama2.c) to GGUF");
  auto model = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto tokenizer = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("keep");
  cmd->add_option("-m,--model", *model, "Input model")->required();
  cmd->add_option("-o,--output", *out, "Output .gguf file")->required();
  cmd->add_option("--tokenizer", *tokenizer, "Tokenizer to embed, overriding the one beside the model");
  cmd->add_option("--dtype", *dtype, "Tensor type: keep, f32, f16, bf16 (keep writes a llama.cpp block-quantized matrix as f16)")
      ->check(CLI::IsMember({"keep", "f32", "f16", "bf16"}));
  return [=]() {
    auto m = load_model(*model, {*tokenizer});
    std::optional<DType> dt;
    if (*dtype == "f32") dt = DType::F32;
    else if (*dtype == "f16") dt = DType::F16;
    else if (*dtype == "bf16") dt = DType::BF16;
    export_gguf(*m, *out, dt);
    fmt::print(stderr, "wrote {}\n", *out);
    return 0;
  };
}

}  // namespace pmpd::cli
