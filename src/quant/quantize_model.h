// `pmpd quantize`: measures input-channel sensitivity on calibration text, quantizes
// every linear layer of a 16-bit model into nested bit planes (or a baseline form) and
// writes one GGUF file (docs/format.md).
#pragma once
#include <functional>
#include <map>
#include <string>

#include "model/model_loader.h"

namespace pmpd::quant {

struct QuantizeOptions {
  std::string method = "anyprec";  // anyprec | uniform | dns (anyprec dense part + exact outliers)
  double sparse_fraction = 0.0045;  // dns: share of weights kept exactly
  int group_size = 128;             // uniform: columns per scale/zero point (0: per row; else a multiple of 64)
  int bits_min = 2, bits_max = 8;  // uniform: bits_min == bits_max
  std::string calib_path;          // text or JSONL with "text"; empty: built-in text
  int calib_tokens = 4096;
  uint64_t seed = 1;
  // Quantize the LM head too (default: it stays 16-bit). It then runs at each step's width,
  // which saves most at large vocabularies (Phi-1.5's 16-bit head is ~32% of a 3-bit step's bytes).
  bool quantize_head = false;
  // Called after each quantized tensor: (done, total, tensor name).
  std::function<void(int, int, const std::string&)> progress;
  // Called when an interrupted run's output is resumed: (layers kept, total).
  std::function<void(int, int)> resumed;
};

// Per-input-channel mean squared activation for each (layer, slot) of the model.
struct Sensitivity {
  std::map<std::pair<int, std::string>, std::vector<float>> mean_sq;
  int tokens = 0;
  std::string source;
};

Sensitivity measure_sensitivity(const Model& m, const QuantizeOptions& opt);
void quantize_model(const Model& m, const std::string& out_path, const QuantizeOptions& opt);

// The text used when no --calib file is given.
const char* builtin_calibration_text();

}  // namespace pmpd::quant
