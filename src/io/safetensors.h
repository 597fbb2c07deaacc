// Hugging Face safetensors: an 8-byte header length, a JSON header mapping tensor names
// to dtype, shape and byte range, then the raw little-endian data.
#pragma once
#include <string>

#include "io/tensor_set.h"

namespace pmpd {

// Adds the tensors of one .safetensors file to `out`; validates every offset.
void read_safetensors(const std::string& path, TensorSet& out);

// Reads model.safetensors.index.json and every shard it names.
void read_safetensors_index(const std::string& index_path, TensorSet& out);

}  // namespace pmpd
