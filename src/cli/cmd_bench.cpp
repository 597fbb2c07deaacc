// pmpd bench: how fast each width runs, per operator and end to end, against the 16-bit
// model measured in the same run. Works on a model file or on a synthetic model of a
// named shape (random weights of the paper's models, no download).
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <random>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/json_file.h"
#include "decode/generator.h"
#include "kernels/cpu/dot.h"
#include "model/cuda_model.h"
#include "model/synthetic.h"

namespace pmpd::cli {

namespace {

struct BenchArgs {
  std::string model, shape = "vicuna-7b", backend = "cpu", bits = "2:8", schedule = "auto", json;
  int prefill_bits = 0, prompt_tokens = 32, new_tokens = 128, threads = 0;
  double min_seconds = 0.5;
  bool no_e2e = false, no_ops = false, gemv_ceiling = false, sync_costs = false, quantize_head = false;
  SamplerParams sampler;  // end to end: greedy unless --temp
};

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

// Bytes one layer's attention and MLP projections read at `bits` (the mean over layers),
// whichever backend reads them.
struct ProjectionBytes {
  double attn = 0, mlp = 0;
};
ProjectionBytes projection_bytes(const Model& m, int bits) {
  auto bytes = [&](const Linear& l) { return l.q ? double(l.q->bytes_read(bits)) : double(l.w.nbytes()); };
  ProjectionBytes b;
  for (auto& l : m.layers) {
    b.attn += bytes(l.q) + bytes(l.k) + bytes(l.v) + bytes(l.o);
    b.mlp += bytes(l.up) + bytes(l.down) + (m.config.gated_mlp ? bytes(l.gate) : 0);
  }
  b.attn /= m.config.n_layers, b.mlp /= m.config.n_layers;
  return b;
}

// CPU: one layer's projections, cycling through the layers (as the GPU timing does).
cuda::ProjectionTiming cpu_projections(const Model& m, int bits, double min_seconds) {
  const ModelConfig& c = m.config;
  const size_t widest = size_t(std::max({c.dim, c.hidden_dim, c.n_heads * c.head_dim}));
  std::vector<float> x(widest, 0.01f), y(widest * 2);
  auto run = [&](const Linear& l) {
    if (l.q) kernels::bitplane_matmul(*l.q, bits, x.data(), 1, y.data());
    else kernels::matmul(l.w, x.data(), 1, y.data());
  };
  auto projections = [&](const LayerWeights& l, bool attn) {
    if (attn) run(l.q), run(l.k), run(l.v), run(l.o);
    else run(l.up), run(l.down), c.gated_mlp ? run(l.gate) : void();
  };
  // One untimed pass: builds the width's integer tables (on first use) and warms caches.
  for (auto& l : m.layers) projections(l, true), projections(l, false);
  cuda::ProjectionTiming t;
  auto time = [&](bool attn) {
    long layers_run = 0;
    auto t0 = clock_type::now();
    do {
      for (auto& l : m.layers) {
        projections(l, attn);
        ++layers_run;
      }
    } while (seconds_since(t0) < min_seconds);
    return seconds_since(t0) / double(layers_run);
  };
  t.attn_seconds = time(true);
  t.mlp_seconds = time(false);
  return t;
}

double host_copy_gbs() {
  const size_t n = size_t(1) << 28;
  std::vector<uint8_t> a(n, 1), b(n, 0);
  auto t0 = clock_type::now();
  int reps = 0;
  do {
#pragma omp parallel for
    for (int64_t i = 0; i < 64; ++i) std::memcpy(&b[size_t(i) * n / 64], &a[size_t(i) * n / 64], n / 64);
    ++reps;
  } while (seconds_since(t0) < 0.3);
  return 2.0 * double(n) * reps / seconds_since(t0) / 1e9;
}

struct DecodeResult {
  double tokens_per_second = 0, average_bits = 0, prefill_tokens_per_second = 0;
};

DecodeResult time_decode(Transformer& tf, const std::vector<int>& prompt, int n, int bits, const std::string& schedule,
                         int prefill_bits, const SamplerParams& sampler) {
  GenerateOptions opt;
  opt.sampler = sampler;
  opt.max_new_tokens = n;
  opt.stop_at_eos = false;
  opt.bits = bits;
  std::unique_ptr<Scheduler> s;
  if (!schedule.empty()) {
    s = make_scheduler(schedule, n, prefill_bits, tf.model().quant.bits_max);
    opt.scheduler = s.get();
  }
  generate(tf, prompt, opt);  // first pass: graphs, caches, clocks
  if (s) s = make_scheduler(schedule, n, prefill_bits, tf.model().quant.bits_max), opt.scheduler = s.get();
  GenerateResult r = generate(tf, prompt, opt);
  DecodeResult d;
  d.tokens_per_second = double(r.tokens.size() - 1) / r.decode_seconds;
  d.average_bits = r.average_bits();
  d.prefill_tokens_per_second = double(r.prompt_tokens) / r.prefill_seconds;
  return d;
}

// --gemv-ceiling: the tensor-core GEMV's decode alone at widths 2..4 (no model needed).
int bench_ceilings(int lo, int hi) {
  lo = std::max(lo, 2), hi = std::min(hi, 4);
  PMPD_CHECK(lo <= hi, "--gemv-ceiling measures widths 2..4 (the pair-table decoder); --bits has none of them");
  const double ceiling = cuda::copy_bandwidth_gbs();
  std::printf("# pmpd bench --gemv-ceiling: %s, measured copy bandwidth %.0f GB/s\n\n"
              "The tensor-core GEMV's decode of 16 x 256 items with nothing around it (no row tasks, table\n"
              "rebuilds, partial sums, barriers or start-up): items from shared memory (the decode alone) or\n"
              "streamed from device memory one group ahead (decode and loads). GB/s: the items' plane bytes.\n"
              "\"x and tables in registers\": each row's centroids in registers, looked up by PRMT instead of the\n"
              "pair tables in shared memory (2..3 bits; docs/data/h200/sweeps/stop29-register-tables.md).\n\n"
              "| width | items from | warps a block | blocks an SM | items side by side | registers (spilled bytes) | G weights/s | GB/s | of copy BW |\n"
              "|---|---|---|---|---|---|---|---|---|\n",
              cuda::device_name().c_str(), ceiling);
  std::fflush(stdout);
  for (const cuda::DecodeCeiling& r : cuda::measure_decode_ceilings(lo, hi))
    std::printf("| %d | %s | %d | %d | %d | %d (%d) | %.0f | %.0f | %.0f%% |\n", r.bits, r.feed, r.warps, r.blocks_per_sm,
                r.group, r.registers, r.local_bytes, r.weights_per_second / 1e9, r.bytes_per_second / 1e9,
                100 * r.bytes_per_second / 1e9 / ceiling);
  std::printf("\nThe GEMV itself (RMSNorm prologue, as for q|k|v) on random tiles of R x 4096 and R x 16384, chained\n"
              "as in a decode step, through copies that exceed the L2 cache; the fit t = fixed + bytes / rate over R\n"
              "separates a fixed cost a GEMV from its streaming rate (one item a warp a task at 4096 columns, four\n"
              "at 16384).\n\n"
              "| width | rows x columns | MB | us | GB/s | of copy BW |\n|---|---|---|---|---|---|\n");
  // Rows chosen so both column counts span the same bytes.
  const std::vector<long long> rows_4096{4096, 12288, 22016, 49152, 98304}, rows_16384{1024, 3072, 5504, 12288, 24576};
  for (int b = lo; b <= hi; ++b)
    for (long long cols : {4096LL, 16384LL}) {
      double sx = 0, sy = 0, sxx = 0, sxy = 0;
      const auto runs = cuda::measure_gemv_scaling(b, cols, cols == 4096 ? rows_4096 : rows_16384);
      for (const cuda::GemvScaling& r : runs) {
        const double gbs = r.bytes / r.seconds / 1e9;
        std::printf("| %d | %lld x %lld | %.1f | %.1f | %.0f | %.0f%% |\n", r.bits, r.rows, r.cols, r.bytes / 1e6,
                    r.seconds * 1e6, gbs, 100 * gbs / ceiling);
        sx += r.bytes, sy += r.seconds, sxx += r.bytes * r.bytes, sxy += r.bytes * r.seconds;
      }
      const double n = double(runs.size()), slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
      const double fixed = (sy - slope * sx) / n;
      std::printf("| %d | fit, %lld columns | | fixed %.1f us | rate %.0f | %.0f%% |\n", b, cols, fixed * 1e6,
                  1 / slope / 1e9, 100 / slope / 1e9 / ceiling);
      std::fflush(stdout);
    }
  return 0;
}

// --sync-costs: a boundary between two dependent phases as a chained launch (one block an SM,
// or two so that a phase starts beside the one before) against a grid barrier inside one
// persistent kernel (no model needed).
int bench_sync_costs() {
  constexpr int kPhases = 64;
  std::printf("# pmpd bench --sync-costs: %s\n\n"
              "A chain of %d dependent phases, each a grid of 512-thread blocks, one an SM, that stream their\n"
              "share of the weights from device memory, then read the whole output of the phase before and write\n"
              "their share: a kernel a phase chained with PDL in a CUDA graph (the decode step's way), with blocks\n"
              "that fill an SM (one an SM: a phase's block starts when the one before on its SM exits) or half of\n"
              "one (two an SM: it starts, and streams, while the phase before runs), or one persistent kernel\n"
              "whose phases meet at a grid barrier (the weights streamed before it). Time a phase. Two\n"
              "diagnostics split the persistent phase: without the barrier (the dependent read and write alone;\n"
              "its outputs are wrong) and with the barrier but no dependent read (the wait alone).\n\n"
              "| bytes a block | MB a phase | chained, one an SM: us a phase | chained, two an SM | persistent "
              "| persistent, no barrier | persistent, barrier, no read |\n"
              "|---|---|---|---|---|---|---|\n",
              cuda::device_name().c_str(), kPhases);
  const std::vector<cuda::SyncCost> runs = cuda::measure_sync_costs({0, 16 << 10, 48 << 10, 256 << 10}, kPhases);
  const size_t ways = std::size(cuda::kSyncWays);
  for (size_t i = 0; i + ways <= runs.size(); i += ways) {
    const cuda::SyncCost& base = runs[i];
    std::printf("| %lld | %.1f | %.2f", base.bytes_per_block, double(base.bytes_per_block) * base.blocks / 1e6,
                base.seconds_per_phase * 1e6);
    for (size_t w = 1; w < ways; ++w)
      std::printf(" | %.2f (%+.2f)", runs[i + w].seconds_per_phase * 1e6,
                  (runs[i + w].seconds_per_phase - base.seconds_per_phase) * 1e6);
    std::printf(" |\n");
  }
  // Whether a kernel of whole-SM blocks in clusters (e.g. a head's q|k|v and attention in one
  // cluster) could run all its clusters at once.
  std::printf("\nClusters of whole-SM blocks resident at once:");
  for (int size : {2, 4, 8}) std::printf(" %d of %d", cuda::max_resident_clusters(size), size);
  std::printf("\n");
  return 0;
}

int bench(const BenchArgs& a) {
  set_threads(a.threads);
  const Backend backend = parse_backend(a.backend);
  const auto [lo, hi] = parse_bit_range(a.bits);
  validate_sampler_params(a.sampler);
  // Before building a synthetic model (a minute and gigabytes for the 7B shape).
  if (backend == Backend::CUDA)
    PMPD_CHECK(cuda::compiled() && cuda::device_count() > 0,
               "--backend cuda: no usable GPU, device {}; --backend cpu runs without one", cuda::device_name());
  if (a.gemv_ceiling) {
    PMPD_CHECK(backend == Backend::CUDA, "--gemv-ceiling measures the CUDA GEMV's decode: add --backend cuda");
    return bench_ceilings(lo, hi);
  }
  if (a.sync_costs) {
    PMPD_CHECK(backend == Backend::CUDA, "--sync-costs measures the device: add --backend cuda");
    return bench_sync_costs();
  }
  std::unique_ptr<Model> quantized;
  std::string source;
  if (!a.model.empty()) {
    quantized = load_model(a.model);
    PMPD_CHECK(quantized->quantized(), "{}: pmpd bench compares widths of a model quantized by `pmpd quantize`", a.model);
    PMPD_CHECK(lo >= quantized->quant.bits_min && hi <= quantized->quant.bits_max, "--bits {}: {} holds {} to {} bits",
               a.bits, a.model, quantized->quant.bits_min, quantized->quant.bits_max);
    source = a.model;
  } else {
    std::fprintf(stderr, "building a synthetic %s (random weights)...\n", a.shape.c_str());
    quantized = make_synthetic_model(synthetic_config(a.shape), {true, lo, hi, 1, a.quantize_head});
    source = a.shape + (a.quantize_head ? " (synthetic, random weights, LM head quantized)" : " (synthetic, random weights)");
  }
  const ModelConfig& c = quantized->config;
  std::string schedule = a.schedule;
  if (schedule == "auto") schedule = lo <= 3 && hi >= 4 ? "4:32,3" : fmt::format("{}:32,{}", hi, lo);
  if (!schedule.empty())
    for (int b : make_scheduler(schedule, a.new_tokens, a.prefill_bits, hi)->widths())
      PMPD_CHECK(b >= lo && b <= hi, "--schedule {} uses {} bits, outside --bits {}", schedule, b, a.bits);
  // The 16-bit baseline: the same shapes with f16 weights.
  auto dense = make_synthetic_model(c, {false, 0, 0, 2});

  Json out;
  out["model"] = source;
  out["backend"] = a.backend;
  out["config"] = c.describe();
  std::string device = "CPU";
  double ceiling = 0;
  if (backend == Backend::CUDA) {
    device = cuda::device_name();
    ceiling = cuda::copy_bandwidth_gbs();
  } else {
    ceiling = host_copy_gbs();
  }
  out["device"] = device;
  out["copy_bandwidth_gbs"] = ceiling;
  out["shape"] = a.model.empty() ? a.shape : "";
  out["head_quantized"] = quantized->output.q != nullptr;
  out["prompt_tokens"] = a.prompt_tokens;
  out["new_tokens"] = a.new_tokens;
  std::printf("# pmpd bench: %s\n\nbackend %s (%s); measured copy bandwidth %.0f GB/s (bytes read + written)\n\n",
              source.c_str(), a.backend.c_str(), device.c_str(), ceiling);

  std::fprintf(stderr, "loading the models onto the %s...\n", a.backend.c_str());
  Transformer tq(*quantized, backend), td(*dense, backend);
  std::vector<int> widths;
  for (int b = hi; b >= lo; --b) widths.push_back(b);

  if (!a.no_ops) {
    std::printf("## Projections of one layer, one token (GEMV)\n\n"
                "| width | attn proj. us | speedup | GB/s | of copy BW | MLP proj. us | speedup | GB/s | of copy BW |\n"
                "|---|---|---|---|---|---|---|---|---|\n");
    auto timing = [&](Transformer& tf, int bits) {
      if (backend == Backend::CUDA) return tf.device_model()->time_projections(bits, 20);
      return cpu_projections(tf.model(), bits, a.min_seconds);
    };
    cuda::ProjectionTiming base = timing(td, 0);
    out["ops"] = Json::array();
    auto row = [&](const std::string& name, int bits, const cuda::ProjectionTiming& t, const ProjectionBytes& by) {
      const double ag = by.attn / t.attn_seconds / 1e9, mg = by.mlp / t.mlp_seconds / 1e9;
      std::printf("| %s | %.1f | %.2fx | %.0f | %.0f%% | %.1f | %.2fx | %.0f | %.0f%% |\n", name.c_str(), t.attn_seconds * 1e6,
                  base.attn_seconds / t.attn_seconds, ag, 100 * ag / ceiling, t.mlp_seconds * 1e6,
                  base.mlp_seconds / t.mlp_seconds, mg, 100 * mg / ceiling);
      std::fflush(stdout);
      out["ops"].push_back({{"bits", bits}, {"attn_seconds", t.attn_seconds}, {"mlp_seconds", t.mlp_seconds},
                            {"attn_bytes", by.attn}, {"mlp_bytes", by.mlp},
                            {"attn_speedup", base.attn_seconds / t.attn_seconds},
                            {"mlp_speedup", base.mlp_seconds / t.mlp_seconds}, {"attn_gbs", ag}, {"mlp_gbs", mg}});
    };
    row(backend == Backend::CUDA ? "16 (cuBLAS)" : "16", 16, base, projection_bytes(*dense, 0));
    for (int b : widths) row(std::to_string(b), b, timing(tq, b), projection_bytes(*quantized, b));
    std::printf("\n");
  }

  if (backend == Backend::CUDA && !a.no_ops) {
    // The mean context of the end-to-end decode below.
    const int context = a.prompt_tokens + a.new_tokens / 2;
    std::printf("## Where a decode step's time goes (us per token, summed over layers; %d tokens of context)\n\n"
                "| stage | 16-bit |", context);
    for (int b : widths) std::printf(" %d-bit |", b);
    std::printf("\n|---|---|");
    for (size_t i = 0; i < widths.size(); ++i) std::printf("---|");
    std::printf("\n");
    auto base = td.device_model()->profile_step(0, context);
    std::vector<std::vector<std::pair<std::string, double>>> per;
    for (int b : widths) per.push_back(tq.device_model()->profile_step(b, context));
    const std::string plain = "step without stage marks";
    auto sum_stages = [&](const std::vector<std::pair<std::string, double>>& l) {
      double t = 0;
      for (auto& [name, us] : l)
        if (name != plain) t += us;
      return t;
    };
    std::vector<std::string> stages;
    for (auto* list : {&base, &per.front()})
      for (auto& [name, us] : *list)
        if (name != plain && std::find(stages.begin(), stages.end(), name) == stages.end()) stages.push_back(name);
    auto find = [](const std::vector<std::pair<std::string, double>>& l, const std::string& n) {
      for (auto& [name, us] : l)
        if (name == n) return us;
      return 0.0;
    };
    out["step_profile"] = Json::object();
    stages.push_back("total");
    stages.push_back(plain);
    for (auto& st : stages) {
      std::printf("| %s | %.0f |", st.c_str(), st == "total" ? sum_stages(base) : find(base, st));
      for (size_t i = 0; i < widths.size(); ++i) {
        const double v = st == "total" ? sum_stages(per[i]) : find(per[i], st);
        std::printf(" %.0f |", v);
        out["step_profile"][st][std::to_string(widths[i])] = v;
      }
      std::printf("\n");
    }
    std::printf("\n");
  }

  if (!a.no_e2e) {
    std::mt19937 rng(7);
    std::vector<int> prompt(size_t(a.prompt_tokens));
    for (int& t : prompt) t = int(rng() % uint32_t(c.vocab_size));
    PMPD_CHECK(a.prompt_tokens + a.new_tokens <= c.max_seq_len, "prompt + new tokens exceed the context of {}", c.max_seq_len);
    const std::string sampling =
        a.sampler.temperature > 0
            ? fmt::format("temperature {}, top-k {}, top-p {}", a.sampler.temperature, a.sampler.top_k, a.sampler.top_p)
            : "greedy";
    std::printf("## End-to-end decode (prompt %d tokens, %d new tokens, %s)\n\n"
                "| weights | average bits | decode tokens/s | ms/token | speedup vs 16-bit | prompt tokens/s |\n"
                "|---|---|---|---|---|---|\n",
                a.prompt_tokens, a.new_tokens, sampling.c_str());
    out["decode"] = Json::array();
    DecodeResult base = time_decode(td, prompt, a.new_tokens, 0, "", 0, a.sampler);
    auto row = [&](const std::string& name, const DecodeResult& d) {
      std::printf("| %s | %.2f | %.1f | %.3f | %.2fx | %.0f |\n", name.c_str(), d.average_bits, d.tokens_per_second,
                  1e3 / d.tokens_per_second, d.tokens_per_second / base.tokens_per_second, d.prefill_tokens_per_second);
      std::fflush(stdout);
      out["decode"].push_back({{"name", name}, {"average_bits", d.average_bits}, {"tokens_per_second", d.tokens_per_second},
                               {"speedup", d.tokens_per_second / base.tokens_per_second},
                               {"prefill_tokens_per_second", d.prefill_tokens_per_second}});
    };
    base.average_bits = 16;
    row("16-bit", base);
    std::map<int, double> tps;
    for (int b : widths) {
      DecodeResult d = time_decode(tq, prompt, a.new_tokens, b, "", 0, a.sampler);
      tps[b] = d.tokens_per_second;
      row(std::to_string(b) + "-bit", d);
    }
    if (!schedule.empty()) row("PMPD " + schedule, time_decode(tq, prompt, a.new_tokens, 0, schedule, a.prefill_bits, a.sampler));
    // The cost of a width switch: alternate two widths every token against their mean.
    if (hi > lo && tps.count(lo + 1)) {
      const int h = lo + 1, l = lo;
      DecodeResult alt = time_decode(tq, prompt, a.new_tokens, 0, fmt::format("alternate:{}:{}:1", h, l), h, a.sampler);
      row(fmt::format("alternate {}/{} every token", h, l), alt);
      const double expected = 2.0 / (1.0 / tps[h] + 1.0 / tps[l]);  // tokens/s of the mean step time
      const double overhead = expected / alt.tokens_per_second - 1.0;
      std::printf("\nwidth switch every token: %+.2f%% of a step against the mean of %d and %d bits\n", 100 * overhead, h, l);
      out["switch_overhead"] = overhead;
    }
    if (const cuda::DeviceModel* dm = tq.device_model(); dm && dm->prefill_cache_bytes() > 0) {
      // --prefill-cache: the prompt rates above are of a prompt after the one that filled it.
      std::printf("\nprefill cache: %.2f GiB of f16 weights (filled by the untimed first generation)\n",
                  double(dm->prefill_cache_bytes()) / double(1u << 30));
      out["prefill_cache_bytes"] = dm->prefill_cache_bytes();
    }
    std::printf("\n");
  }
  if (!a.json.empty()) {
    std::ofstream f(a.json);
    PMPD_CHECK(f.good(), "cannot write {}", a.json);
    f << out.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Speed of every width against 16-bit: per-operator and end-to-end decode");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("-m,--model", a->model, "A quantized model (pmpd quantize); default: a synthetic model of --shape");
  cmd->add_option("--shape", a->shape, "Synthetic model shape: vicuna-7b, mobilellama-1.4b, phi-1.5, zephyr-3b, tiny")
      ->capture_default_str();
  add_backend_option(cmd, a->backend);
  cmd->add_option("--bits", a->bits, "Widths to measure, LO:HI")->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "A PMPD schedule to time end to end (auto: 4:32,3 where 3 and 4 bits are measured; empty: none)")->capture_default_str();
  cmd->add_option("--prefill-bits", a->prefill_bits, "Prompt width of the schedule (0: its first width)");
  cmd->add_option("--prompt-tokens", a->prompt_tokens,
                  "Prompt length for the decode timing (CUDA's step profile decodes at this plus half of --new-tokens)")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--new-tokens", a->new_tokens, "Tokens decoded per timing")->capture_default_str()->check(CLI::Range(2, 1 << 16));
  cmd->add_option("--min-seconds", a->min_seconds, "CPU: least time per operator measurement")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd->add_flag("--quantize-head", a->quantize_head,
                "Synthetic model: the LM head quantized too (as `pmpd quantize --quantize-head` makes it), so it runs "
                "at each step's width; the 16-bit baseline keeps an f16 head");
  cmd->add_flag("--no-e2e", a->no_e2e, "Skip the end-to-end decode timing");
  cmd->add_option("--temp", a->sampler.temperature, "End to end: sample at this temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", a->sampler.top_k, "End to end: keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", a->sampler.top_p, "End to end: nucleus sampling mass (1: off)")->capture_default_str();
  cmd->add_flag("--no-ops", a->no_ops, "Skip the per-operator timing");
  cmd->add_flag("--gemv-ceiling", a->gemv_ceiling,
                "CUDA, nothing else: the tensor-core GEMV's decode alone at widths 2..4 (no tasks, barriers or "
                "start-up), then the GEMV on random matrices of growing size with a fitted fixed cost and streaming "
                "rate (docs/cuda.md)");
  cmd->add_flag("--sync-costs", a->sync_costs,
                "CUDA, nothing else: a boundary between two dependent phases as chained kernels (PDL, CUDA graph; "
                "blocks of a whole or half an SM) against a grid barrier inside one persistent kernel, that one also "
                "split into its parts (no barrier; the barrier without the dependent read); then how many "
                "clusters of 2, 4 and 8 whole-SM blocks the device holds at once (docs/cuda.md)");
  cmd->add_option("--json", a->json, "Also write the results as JSON to this file");
  return [a]() { return bench(*a); };
}

}  // namespace pmpd::cli
