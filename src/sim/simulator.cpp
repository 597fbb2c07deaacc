#include "sim/simulator.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/json_file.h"

namespace pmpd::sim {

namespace {

struct Projection {
  double rows, cols;
};

// The four projections of a layer as the GPU backend fuses them (q|k|v, o, gate|up, down).
std::vector<Projection> projections(const ModelConfig& c) {
  const double D = c.dim, F = c.hidden_dim, Q = double(c.n_heads) * c.head_dim, KV = c.kv_dim();
  return {{Q + 2 * KV, D}, {D, Q}, {F * (c.gated_mlp ? 2 : 1), D}, {D, F}};
}

double table_bytes(double rows, int bits) { return bits >= 16 ? 0 : rows * std::ldexp(2.0, bits); }

class Machine {
 public:
  Machine(const ModelConfig& c, const Hardware& hw, SimResult& r) : c_(c), hw_(hw), r_(r), proj_(projections(c)) {
    for (auto& p : proj_) rows_per_layer_ += p.rows;
  }

  // One pass over n tokens at positions pos0 .. pos0+n-1 at `bits`; returns its seconds.
  double pass(int n, int pos0, int bits) {
    double t = hw_.token_overhead_us * 1e-6;
    t += switch_tables(bits);
    const bool stream_tables = !resident(bits);
    // A quantized prompt pass on a dequantizing engine: each projection written out at 16
    // bits (a memory-bound operator of its own), then multiplied as a 16-bit one; with the
    // engine's prefill cache the 16-bit rows are there already, and the pass is a 16-bit one.
    const bool quantized_prompt = n > 1 && bits < 16 && hw_.prompt_dequantizes;
    const bool cached = quantized_prompt && hw_.prefill_cache;
    const bool dequantize = quantized_prompt && !cached;
    const int weight_bits = cached ? 16 : bits;
    for (int l = 0; l < c_.n_layers; ++l) {
      for (auto& p : proj_) {
        const double w = weight_bits >= 16 ? p.rows * p.cols * 2 : p.rows * p.cols * bits / 8.0;
        const double tb = weight_bits < 16 && stream_tables ? table_bytes(p.rows, bits) : 0;
        r_.bytes.weights += w, r_.bytes.tables += tb;
        if (dequantize) {
          const double w16 = p.rows * p.cols * 2;
          r_.bytes.dequantized += 2 * w16;
          t += op(w + tb + w16, 0, hw_.mac_rate(16)) + op(w16, p.rows * p.cols * n, hw_.mac_rate(16));
        } else {
          t += op(w + tb, p.rows * p.cols * n, hw_.mac_rate(weight_bits));
        }
      }
      // Attention: each token reads the keys and values before it and writes its own.
      const double kv_elem = hw_.kv_bits / 8.0, kv = c_.kv_dim();
      double positions = 0;
      for (int i = 0; i < n; ++i) positions += pos0 + i + 1;
      const double read = 2 * kv * kv_elem * (n == 1 ? positions : pos0 + n), write = 2 * kv * kv_elem * n;
      r_.bytes.kv_read += read, r_.bytes.kv_write += write;
      t += op(read + write, 2.0 * c_.n_heads * c_.head_dim * positions, hw_.attention_mac_rate());
      t += (weight_bits >= 16 || dequantize ? hw_.extra_ops_per_layer_16 : hw_.extra_ops_per_layer) * hw_.op_overhead_us * 1e-6;
      if (n > 1) t += hw_.prompt_layer_overhead_us * 1e-6;
    }
    // The LM head stays 16-bit; only the last position's logits are needed.
    const double head = double(c_.vocab_size) * c_.dim * 2;
    r_.bytes.head += head;
    t += op(head, double(c_.vocab_size) * c_.dim, hw_.mac_rate(16));
    return t;
  }

 private:
  bool resident(int bits) const {
    return bits < 16 && hw_.table_buffer_kib > 0 &&
           table_bytes(rows_per_layer_, bits) * c_.n_layers <= hw_.table_buffer_kib * 1024;
  }

  // Tables that live on chip load once when the width changes.
  double switch_tables(int bits) {
    if (bits == current_) return 0;
    current_ = bits;
    if (!resident(bits)) return 0;
    const double b = table_bytes(rows_per_layer_, bits) * c_.n_layers;
    r_.bytes.table_loads += b;
    ++r_.table_switches;
    return b / (hw_.bandwidth_gbs * 1e9);
  }

  double op(double bytes, double macs, double rate) {
    const double tm = bytes / (hw_.bandwidth_gbs * 1e9), tc = macs / rate;
    r_.macs += macs;
    if (tm >= tc) mem_bound_ += tm;
    busy_ += std::max(tm, tc);
    return std::max(tm, tc) + hw_.op_overhead_us * 1e-6;
  }

 public:
  double mem_bound_ = 0, busy_ = 0;

 private:
  const ModelConfig& c_;
  const Hardware& hw_;
  SimResult& r_;
  std::vector<Projection> proj_;
  double rows_per_layer_ = 0;
  int current_ = -1;
};

}  // namespace

SimResult simulate(const ModelConfig& c, const Hardware& hw, const Trace& t) {
  PMPD_CHECK(t.prompt_tokens > 0, "simulate: the trace has no prompt tokens");
  auto valid = [&](int b) { return b == 16 || (b >= 1 && b <= 8); };
  PMPD_CHECK(valid(t.prefill_bits), "simulate: prefill width {} is not 1..8 or 16", t.prefill_bits);
  for (int b : t.token_bits) PMPD_CHECK(valid(b), "simulate: token width {} is not 1..8 or 16", b);
  SimResult r;
  Machine m(c, hw, r);
  r.prefill_seconds = m.pass(t.prompt_tokens, 0, t.prefill_bits);
  for (size_t i = 1; i < t.token_bits.size(); ++i) {
    r.token_seconds.push_back(m.pass(1, t.prompt_tokens + int(i) - 1, t.token_bits[i]));
    r.decode_seconds += r.token_seconds.back();
  }
  r.total_seconds = r.prefill_seconds + r.decode_seconds;
  r.memory_bound_fraction = m.busy_ > 0 ? m.mem_bound_ / m.busy_ : 0;
  r.bandwidth_utilization = r.bytes.total() / (r.total_seconds * hw.bandwidth_gbs * 1e9);
  double s = 0;
  for (int b : t.token_bits) s += b;
  r.average_bits = t.token_bits.empty() ? 0 : s / double(t.token_bits.size());
  return r;
}

Trace as_16bit(const Trace& t) {
  Trace o = t;
  o.prefill_bits = 16;
  std::fill(o.token_bits.begin(), o.token_bits.end(), 16);
  return o;
}

Trace trace_from_run_json(const std::string& text, const std::string& what) {
  Json j = Json::parse(text, nullptr, false);
  PMPD_CHECK(!j.is_discarded() && j.is_object(), "{}: not the JSON of `pmpd run --json`", what);
  PMPD_CHECK(j.contains("prompt_ids") && j["prompt_ids"].is_array() && j.contains("tokens") && j["tokens"].is_array(),
             "{}: needs prompt_ids and tokens (pmpd run --json)", what);
  Trace t;
  t.prompt_tokens = int(j["prompt_ids"].size());
  if (j.contains("prefill_bits")) {
    PMPD_CHECK(j["prefill_bits"].is_number_integer(), "{}: prefill_bits must be an integer", what);
    t.prefill_bits = j["prefill_bits"].get<int>();
  }
  for (auto& tok : j["tokens"]) {
    PMPD_CHECK(tok.is_object() && tok.contains("bits") && tok["bits"].is_number_integer(), "{}: a token without bits", what);
    t.token_bits.push_back(tok["bits"].get<int>());
  }
  return t;
}

}  // namespace pmpd::sim
