// Writes a loaded model as a GGUF file that llama.cpp conventions describe: llama,
// phi2 or stablelm architecture keys, GGUF tensor names, llama Q/K rows permuted for
// interleaved rotary (as llama.cpp's converter does), and the tokenizer.
#pragma once
#include <optional>
#include <string>

#include "model/model_loader.h"

namespace pmpd {

// `dtype`: convert the matrices to F32/F16/BF16; nullopt keeps each tensor's own.
void export_gguf(const Model& m, const std::string& path, std::optional<DType> dtype = std::nullopt);

}  // namespace pmpd
