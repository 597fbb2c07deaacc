// The dataflow simulator on cases small enough to compute by hand.
#include "sim/simulator.h"
#include "test_util.h"

namespace pmpd {
namespace {

// 1 layer, dim 64, hidden 128, 2 heads of 32, vocab 100, gated MLP. Fused projections:
// q|k|v 192x64, o 64x64, gate|up 256x64, down 64x128: 40960 weights, 576 rows.
ModelConfig small() {
  ModelConfig c;
  c.dim = 64, c.hidden_dim = 128, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 2, c.head_dim = 32;
  c.rotary_dim = 32, c.vocab_size = 100, c.max_seq_len = 64;
  return c;
}

sim::Hardware hw(const std::string& json) { return sim::hardware_from_json_text(json, "test"); }

TEST(Simulator, BandwidthBoundPassIsBytesOverBandwidth) {
  auto h = hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"16": 1e12}})");
  sim::Trace t{3, 4, {4, 4}};
  sim::SimResult r = sim::simulate(small(), h, t);
  ASSERT_EQ(r.token_seconds.size(), 1u);
  // weights 40960 * 4/8 + tables 576 * 2^4 * 2 + KV read 2*64*2*4 + write 2*64*2 + head 100*64*2
  const double bytes = 20480 + 18432 + 1024 + 256 + 12800;
  EXPECT_NEAR(r.token_seconds[0], bytes / 1e9, 1e-15);
  EXPECT_DOUBLE_EQ(r.bytes.kv_write, 256 * 3 + 256);  // the prompt pass wrote 3 positions
  EXPECT_DOUBLE_EQ(r.memory_bound_fraction, 1.0);
}

TEST(Simulator, ComputeBoundPassIsMacsOverRate) {
  auto h = hw(R"({"bandwidth_gbs": 1e9, "clock_ghz": 1, "macs_per_cycle": {"4": 1, "16": 1}})");
  sim::Trace t{3, 4, {4, 4}};
  sim::SimResult r = sim::simulate(small(), h, t);
  // projections 40960 + attention 2 * 2 heads * 32 * 4 positions + head 6400
  EXPECT_NEAR(r.token_seconds[0], (40960 + 512 + 6400) / 1e9, 1e-15);
  // the prompt pass: 3 tokens of projections, causal attention over 1+2+3 positions, one head row
  EXPECT_NEAR(r.prefill_seconds, (3 * 40960 + 2 * 2 * 32 * 6 + 6400) / 1e9, 1e-15);
  EXPECT_DOUBLE_EQ(r.memory_bound_fraction, 0.0);
}

TEST(Simulator, NarrowerWidthsUseTheNextWiderRate) {
  auto h = hw(R"({"bandwidth_gbs": 1, "clock_ghz": 2, "macs_per_cycle": {"4": 8, "16": 2}})");
  EXPECT_DOUBLE_EQ(h.mac_rate(2), 16e9);
  EXPECT_DOUBLE_EQ(h.mac_rate(4), 16e9);
  EXPECT_DOUBLE_EQ(h.mac_rate(5), 4e9);
  EXPECT_DOUBLE_EQ(h.mac_rate(16), 4e9);
}

TEST(Simulator, ResidentTablesLoadOnceAtEachWidthChange) {
  auto h = hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"16": 1e12}, "table_buffer_kib": 64})");
  sim::Trace t{2, 4, {4, 4, 3, 3, 2}};
  sim::SimResult r = sim::simulate(small(), h, t);
  EXPECT_EQ(r.table_switches, 3);                                // 4 (prompt), 3, 2
  EXPECT_DOUBLE_EQ(r.bytes.table_loads, 576.0 * (32 + 16 + 8));  // each width's tables once
  EXPECT_DOUBLE_EQ(r.bytes.tables, 0);
  // The step that switches to 3 bits pays the load: 576 * 2^3 * 2 bytes more than the next one
  // (which also reads one more KV position: 256 bytes).
  EXPECT_NEAR(r.token_seconds[1] - r.token_seconds[2], (9216 - 256) / 1e9, 1e-15);
}

TEST(Simulator, FixedCostsAddPerOperatorAndPass) {
  auto h = hw(R"({"bandwidth_gbs": 1e9, "macs_per_cycle": {"16": 1e9}, "clock_ghz": 1e9,
                 "op_overhead_us": 1, "extra_ops_per_layer": 2, "token_overhead_us": 10})");
  sim::SimResult r = sim::simulate(small(), h, sim::Trace{1, 16, {16, 16}});
  // 4 projections + attention + 2 extra + the head = 8 operators, plus the pass cost.
  EXPECT_NEAR(r.token_seconds[0], 18e-6, 1e-9);
}

TEST(Simulator, SixteenBitBaselineAndSpeedup) {
  auto h = hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"16": 1e12}})");
  sim::Trace t{1, 4, {4, 3, 3}};
  sim::Trace b = sim::as_16bit(t);
  EXPECT_EQ(b.prefill_bits, 16);
  EXPECT_EQ(b.token_bits, (std::vector<int>{16, 16, 16}));
  sim::SimResult q = sim::simulate(small(), h, t), f = sim::simulate(small(), h, b);
  EXPECT_GT(f.decode_seconds / q.decode_seconds, 2.0);
  EXPECT_NEAR(q.average_bits, 10.0 / 3, 1e-12);
}

TEST(Simulator, ReadsRunJsonTraces) {
  sim::Trace t = sim::trace_from_run_json(
      R"({"prompt_ids": [1, 2, 3, 4], "prefill_bits": 5, "tokens": [{"id": 7, "bits": 5}, {"id": 8, "bits": 3}]})", "run");
  EXPECT_EQ(t.prompt_tokens, 4);
  EXPECT_EQ(t.prefill_bits, 5);
  EXPECT_EQ(t.token_bits, (std::vector<int>{5, 3}));
  EXPECT_THROW(sim::trace_from_run_json("[]", "x"), Error);
  EXPECT_THROW(sim::trace_from_run_json(R"({"prompt_ids": [1], "tokens": [{"id": 1}]})", "x"), Error);
}

// A dequantizing engine (pmpd's GPU backends) runs a quantized prompt pass as the 16-bit one
// plus, per projection, the dequantization: read the b-bit weights and tables, write 16-bit
// ones. Decode passes are untouched.
TEST(Simulator, DequantizingPromptPassIsTheSixteenBitOnePlusTheDequantization) {
  const std::string rates = R"("bandwidth_gbs": 1, "clock_ghz": 1, "macs_per_cycle": {"4": 1e9, "16": 1e9})";
  auto native = hw("{" + rates + "}"), dequant = hw("{" + rates + R"(, "prompt_dequantizes": true})");
  sim::Trace t{3, 4, {4, 4}};
  sim::SimResult n = sim::simulate(small(), native, t), d = sim::simulate(small(), dequant, t);
  sim::SimResult b = sim::simulate(small(), dequant, sim::as_16bit(t));
  // weights 40960 * 4/8 + tables 576 * 2^4 * 2 read, 40960 * 2 written (and read back by the 16-bit pass)
  EXPECT_NEAR(d.prefill_seconds - b.prefill_seconds, (20480 + 18432 + 81920) / 1e9, 1e-15);
  EXPECT_DOUBLE_EQ(d.bytes.dequantized, 2 * 81920);
  EXPECT_DOUBLE_EQ(n.bytes.dequantized, 0);
  EXPECT_DOUBLE_EQ(d.token_seconds[0], n.token_seconds[0]);
  EXPECT_DOUBLE_EQ(d.decode_seconds, n.decode_seconds);
  EXPECT_THROW(hw("{" + rates + R"(, "prompt_dequantizes": 1})"), Error);
}

// With the engine's prefill cache a dequantizing engine's quantized prompt pass is its 16-bit
// one (the rows are there already); decode passes are untouched, and an engine that multiplies
// at the width itself has nothing cached.
TEST(Simulator, PrefillCacheMakesTheDequantizingPromptPassSixteenBit) {
  const std::string rates = R"("bandwidth_gbs": 1, "clock_ghz": 1, "macs_per_cycle": {"4": 1e9, "16": 1e9}, "op_overhead_us": 1, "extra_ops_per_layer": 2, "extra_ops_per_layer_16": 5)";
  auto dequant = hw("{" + rates + R"(, "prompt_dequantizes": true})"), cached = dequant, native = hw("{" + rates + "}");
  cached.prefill_cache = true;
  auto native_cached = native;
  native_cached.prefill_cache = true;
  sim::Trace t{3, 4, {4, 4}};
  sim::SimResult d = sim::simulate(small(), dequant, t), c = sim::simulate(small(), cached, t);
  sim::SimResult b = sim::simulate(small(), dequant, sim::as_16bit(t));
  EXPECT_DOUBLE_EQ(c.prefill_seconds, b.prefill_seconds);
  EXPECT_LT(c.prefill_seconds, d.prefill_seconds);
  EXPECT_DOUBLE_EQ(c.bytes.dequantized, 0);
  EXPECT_DOUBLE_EQ(c.decode_seconds, d.decode_seconds);
  EXPECT_DOUBLE_EQ(sim::simulate(small(), native_cached, t).prefill_seconds, sim::simulate(small(), native, t).prefill_seconds);
}

// The attention's products may run at their own rate (pmpd's prompt attention is not a GEMM).
TEST(Simulator, AttentionRunsAtItsOwnRate) {
  auto h = hw(R"({"bandwidth_gbs": 1e9, "clock_ghz": 1, "macs_per_cycle": {"4": 1, "16": 1}, "attention_macs_per_cycle": 0.5})");
  EXPECT_DOUBLE_EQ(h.attention_mac_rate(), 0.5e9);
  EXPECT_DOUBLE_EQ(hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"16": 3}})").attention_mac_rate(), 3e9);
  sim::SimResult r = sim::simulate(small(), h, sim::Trace{3, 4, {4, 4}});
  // as ComputeBoundPassIsMacsOverRate, the attention's 512 MACs at half the rate
  EXPECT_NEAR(r.token_seconds[0], (40960 + 2 * 512 + 6400) / 1e9, 1e-15);
  EXPECT_NEAR(r.prefill_seconds, (3 * 40960 + 2 * (2 * 2 * 32 * 6) + 6400) / 1e9, 1e-15);
}

// Passes over several tokens pay a fixed cost a layer; single-token passes do not.
TEST(Simulator, PromptPassesPayTheirLayerOverhead) {
  const std::string rates = R"("bandwidth_gbs": 1, "macs_per_cycle": {"16": 1e12})";
  auto plain = hw("{" + rates + "}"), slow = hw("{" + rates + R"(, "prompt_layer_overhead_us": 7})");
  sim::Trace t{3, 4, {4, 4}};
  sim::SimResult a = sim::simulate(small(), plain, t), b = sim::simulate(small(), slow, t);
  EXPECT_NEAR(b.prefill_seconds - a.prefill_seconds, 7e-6, 1e-15);  // one layer
  EXPECT_DOUBLE_EQ(b.decode_seconds, a.decode_seconds);
}

TEST(Simulator, RejectsBadHardwareAndTraces) {
  EXPECT_THROW(hw("{}"), Error);
  EXPECT_THROW(hw(R"({"bandwidth_gbs": 0, "macs_per_cycle": {"16": 1}})"), Error);
  EXPECT_THROW(hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"4": 1}})"), Error);    // no 16-bit rate
  EXPECT_THROW(hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"x": 1, "16": 1}})"), Error);
  EXPECT_THROW(hw(R"({"bandwidth_gbs": -1, "macs_per_cycle": {"16": 1}})"), Error);
  EXPECT_THROW(hw("not json"), Error);
  EXPECT_THROW(hw(R"({"name": 5, "bandwidth_gbs": 1, "macs_per_cycle": {"16": 1}})"), Error);  // found by fuzz_jobs
  EXPECT_THROW(sim::trace_from_run_json(R"({"prompt_ids": [1], "prefill_bits": "x", "tokens": []})", "t"), Error);
  auto h = hw(R"({"bandwidth_gbs": 1, "macs_per_cycle": {"16": 1}})");
  EXPECT_THROW(sim::simulate(small(), h, sim::Trace{0, 4, {4}}), Error);
  EXPECT_THROW(sim::simulate(small(), h, sim::Trace{1, 12, {4}}), Error);
  for (const char* name : {"edge-npu-lpddr5", "datacenter-hbm3", "h100-pmpd", "h200-pmpd", "cpu-dev-vm"})
    EXPECT_NO_THROW(sim::load_hardware(name)) << name;
  EXPECT_THROW(sim::load_hardware("no-such-device"), Error);
}

}  // namespace
}  // namespace pmpd
