// A transaction-level model of decoding on a dataflow accelerator (issue 9). Every
// operator streams its weights (and the KV cache) from off-chip memory through the
// compute units; an operator takes max(bytes / bandwidth, MACs / MAC rate at its weight
// width) plus a fixed overhead, operators run one after another, and a pass is the sum of
// its operators plus a fixed per-pass cost. Centroid tables either stream with the
// weights (every pass reads its width's tables) or, when one width's tables fit on chip,
// load once at every width change.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"
#include "sim/hardware.h"

namespace pmpd::sim {

// What is replayed: a prompt pass at one width, then one decode pass per generated token
// after the first (token 0 comes from the prompt pass), each at its width. 16 = 16-bit.
struct Trace {
  int prompt_tokens = 0;
  int prefill_bits = 16;
  std::vector<int> token_bits;  // width of the pass that produced each generated token
};

struct Bytes {
  double weights = 0, tables = 0, table_loads = 0, kv_read = 0, kv_write = 0, head = 0;
  double dequantized = 0;  // 16-bit weights written and read back by dequantizing prompt passes
  double total() const { return weights + tables + table_loads + kv_read + kv_write + head + dequantized; }
};

struct SimResult {
  double prefill_seconds = 0;
  std::vector<double> token_seconds;  // each decode pass (tokens 1..n-1)
  double total_seconds = 0;           // prompt pass + decode passes
  double decode_seconds = 0;
  int table_switches = 0;
  Bytes bytes;
  double macs = 0;
  double memory_bound_fraction = 0;  // of operator time spent where bandwidth was the limit
  double bandwidth_utilization = 0;  // bytes moved / (time x bandwidth)
  double average_bits = 0;           // over generated tokens
  double mean_token_seconds() const { return token_seconds.empty() ? 0 : decode_seconds / double(token_seconds.size()); }
};

SimResult simulate(const ModelConfig& c, const Hardware& hw, const Trace& t);

// The same trace with every width replaced by 16 (the 16-bit baseline on the same hardware).
Trace as_16bit(const Trace& t);

// A trace from `pmpd run --json` output (prompt_ids, prefill_bits, tokens[].bits).
Trace trace_from_run_json(const std::string& text, const std::string& what);

}  // namespace pmpd::sim
