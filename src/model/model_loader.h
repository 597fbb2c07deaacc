// Opens a checkpoint in any supported format and binds its tensors to a Model:
//  - a Hugging Face directory (config.json + model.safetensors or a sharded index),
//  - a GGUF file,
//  - a llama2.c .bin (with tokenizer.bin beside it or given explicitly).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor_set.h"
#include "kernels/cpu/bitplane.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace pmpd {

// A linear layer: weight {out, in} used in place (16/32-bit, or nested bit planes when
// quantized), optional bias widened to f32.
struct Linear {
  TensorView w;                                  // shape {out, in}; data null when quantized
  std::shared_ptr<kernels::BitPlaneMatrix> q;    // set for quantized layers
  std::vector<float> bias;
  int64_t out() const { return w.rows(); }
  int64_t in() const { return w.cols(); }
};

// What `pmpd quantize` recorded in a quantized file (pmpd.* metadata).
struct QuantInfo {
  std::string method;  // empty: not quantized; anyprec, uniform, dns
  int bits_min = 0, bits_max = 0;
  int group_size = 0;  // uniform: columns per table (0: one per row)
  int quantized_tensors = 0;
};

struct Norm {
  std::vector<float> weight, bias;  // widened to f32 at load (small)
};

struct LayerWeights {
  Norm attn_norm, ffn_norm;  // ffn_norm unused with a parallel residual
  Linear q, k, v, o;
  Linear gate, up, down;     // gate unused without a gated MLP
};

struct Model {
  std::string path;
  std::string format;  // "safetensors", "gguf", "llama2c"
  ModelConfig config;
  TensorSet tensors;   // owns the mappings every view points into
  TensorView token_embd;
  std::vector<LayerWeights> layers;
  Norm output_norm;
  Linear output;       // the LM head (the embedding matrix when tied)
  std::optional<TokenizerData> tokenizer;
  QuantInfo quant;
  // llama.cpp block types (Q4_K, Q8_0, ...) the loader widened to F16 rows: matrices a type.
  std::map<std::string, int> widened_from;

  size_t weight_bytes() const;
  bool quantized() const { return !quant.method.empty(); }
};

struct LoadOptions {
  std::string tokenizer_path;  // overrides the tokenizer found beside the model
};

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& opt = {});

// The model pmpd uses when none is named: PMPD_MODEL, else the project's own default.
std::string default_model_path();

}  // namespace pmpd
