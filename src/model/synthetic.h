// Models of the paper's shapes with random weights, built in memory: speed and memory
// measurements (pmpd bench, pmpd simulate) need the shapes, not trained values, and no
// download. Quantized ones hold random nested bit planes and sorted random centroid
// tables for every width in [bits_min, bits_max], exactly as `pmpd quantize` lays them out.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model_loader.h"

namespace pmpd {

// vicuna-7b, mobilellama-1.4b, phi-1.5, zephyr-3b (the paper's models), and tiny (tests).
std::vector<std::string> synthetic_shape_names();
// The architecture of a named shape; an unknown name is an error listing the known ones.
ModelConfig synthetic_config(const std::string& name);

struct SyntheticOptions {
  bool quantized = true;  // nested bit planes; false: f16 weights (the 16-bit baseline)
  int bits_min = 2, bits_max = 8;
  uint64_t seed = 1;
  bool quantize_head = false;  // quantized models: the LM head in nested bit planes too
};
std::unique_ptr<Model> make_synthetic_model(const ModelConfig& c, const SyntheticOptions& opt);

}  // namespace pmpd
