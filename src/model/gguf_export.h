// Writes a loaded model as a GGUF file that llama.cpp conventions describe: llama,
// phi2 or stablelm architecture keys, GGUF tensor names, llama Q/K rows permuted for
// interleaved rotary (as llama.cpp's converter does), and the tokenizer.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "io/gguf.h"
#include <string>

#include "model/model_loader.h"

namespace pmpd {

// Lets a caller (the quantizer) write its own form of each linear layer and add metadata.
struct ExportHooks {
  // Called for every linear layer (the LM head only with `head` set); returns true if it
  // wrote the weight itself. row_order[i] is the source row of output row i (llama Q/K rows are
  // permuted for interleaved rotary); keep() holds buffers until the file is written.
  std::function<bool(const std::string& name, const Linear& l, const std::vector<int>& row_order,
                     GgufWriter& w, const std::function<uint8_t*(size_t)>& keep)>
      linear;
  std::function<void(GgufWriter& w)> metadata;
  // Pass the LM head ("output") to `linear` too; a tied head is then written as its own
  // tensor (the embedding stays 16-bit: a token reads one row of it).
  bool head = false;
};

// `dtype`: convert the matrices to F32/F16/BF16; nullopt keeps each tensor's own.
void export_gguf(const Model& m, const std::string& path, std::optional<DType> dtype = std::nullopt,
                 const ExportHooks* hooks = nullptr);

}  // namespace pmpd
