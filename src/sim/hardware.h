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
  double table_buffer_kib = 0;         // on-chip room for one width's centroid tables (0: stream them)
  double op_overhead_us = 0;           // fixed cost of every operator (launch, pipeline fill)
  int extra_ops_per_layer = 0;         // operators besides the 4 projections and attention
  int extra_ops_per_layer_16 = 0;      // the same for 16-bit passes (an engine may fuse less there)
  double token_overhead_us = 0;        // fixed cost of every pass (host work, logits transfer)
  int kv_bits = 16;                    // KV-cache element width

  // MACs a second at `bits`: the entry for that width, else the next wider one listed.
  double mac_rate(int bits) const;
};

// A path to a JSON file, or the name of a shipped description (hw/NAME.json).
Hardware load_hardware(const std::string& name_or_path);
Hardware hardware_from_json_text(const std::string& text, const std::string& what);

}  // namespace pmpd::sim
