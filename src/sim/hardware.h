// A dataflow accelerator (or any device) as the simulator sees it: off-chip bandwidth,
// multiply-accumulate throughput per weight width, on-chip room for centroid tables, and
// fixed per-operator and per-token costs. Read from JSON (docs/simulator.md, hw/*.json).
#pragma once
#include <map>
#include <string>

namespace pmpd::sim {

struct Hardware {
  std::string name, source;
  double bandwidth_gbs = 0;            // sustained off-chip read bandwidth, GB/s
  double clock_ghz = 1;
  std::map<int, double> macs_per_cycle;  // weight width (2..8, 16) -> device-wide MACs a cycle
  double attention_macs_per_cycle = 0;   // the attention's q.k and p.v products (0: the 16-bit rate)
  double table_buffer_kib = 0;         // on-chip room for one width's centroid tables (0: stream them)
  double op_overhead_us = 0;           // fixed cost of every operator (launch, pipeline fill)
  int extra_ops_per_layer = 0;         // operators besides the 4 projections and attention
  int extra_ops_per_layer_16 = 0;      // the same for 16-bit passes (an engine may fuse less there)
  double token_overhead_us = 0;        // fixed cost of every pass (host work, logits transfer)
  double prompt_layer_overhead_us = 0;  // fixed cost a layer of passes over several tokens (e.g.
                                        // kernels launched one by one where decode replays a graph)
  int kv_bits = 16;                    // KV-cache element width
  // Quantized prompt passes dequantize each projection to 16 bits (reading its b-bit weights,
  // writing 16-bit ones) and run the 16-bit matrix product on them, as pmpd's GPU backends do;
  // false: the MAC array multiplies at the width itself, as for a decode pass.
  bool prompt_dequantizes = false;
  // The engine's prefill cache (pmpd --prefill-cache; an option of the run, not a field of the
  // JSON): a dequantizing engine keeps the dequantized rows, so a quantized prompt pass reads
  // 16-bit weights and runs as a 16-bit one (the first prompt, which fills the cache, is not
  // modelled). Without prompt_dequantizes it changes nothing.
  bool prefill_cache = false;

  // MACs a second at `bits`: the entry for that width, else the next wider one listed.
  double mac_rate(int bits) const;
  // MACs a second of the attention (which an engine may run on other units than its GEMMs).
  double attention_mac_rate() const;
};

// A path to a JSON file, or the name of a shipped description (hw/NAME.json).
Hardware load_hardware(const std::string& name_or_path);
Hardware hardware_from_json_text(const std::string& text, const std::string& what);

}  // namespace pmpd::sim
