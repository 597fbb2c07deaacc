#include "quant/quantize_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/dtype.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "model/gguf_export.h"
#include "model/transformer.h"
#include "quant/anyprec.h"
#include "quant/bitplane_pack.h"
#include "quant/dense_sparse.h"

namespace pmpd::quant {

const char* builtin_calibration_text() {
  return "A man in a blue shirt is standing on a ladder and cleaning the windows of a tall building. "
         "Two young girls are playing with a ball in the park while their dog watches them. "
         "The river flows slowly through the valley, past old stone bridges and green fields. "
         "German: Ein Mann fährt mit dem Fahrrad über eine Brücke.\nEnglish:\nA man rides a bicycle across a bridge.\n"
         "Word: harbor\nDefinition:\na sheltered port where ships can take on or discharge cargo\n"
         "In the morning the market fills with people buying bread, fruit and fresh fish. "
         "She opened the letter, read it twice, and smiled before putting it back into the envelope. "
         "Scientists measure the temperature of the ocean to understand how the climate is changing. "
         "The children built a small boat out of wood and sailed it on the pond behind the school.";
}

namespace {

std::string calibration_text(const QuantizeOptions& opt) {
  if (opt.calib_path.empty()) return builtin_calibration_text();
  if (!opt.calib_path.ends_with(".jsonl")) return read_text_file(opt.calib_path);
  std::string text;
  for_each_jsonl(opt.calib_path, [&](const Json& j, const std::string&) {
    for (auto& [k, v] : j.items())
      if (v.is_string()) text += v.get<std::string>() + "\n";
    return true;
  });
  return text;
}

const char* slot_of(const std::string& tensor) {
  if (tensor.find(".attn_q.") != std::string::npos || tensor.find(".attn_k.") != std::string::npos ||
      tensor.find(".attn_v.") != std::string::npos)
    return "attn_in";
  if (tensor.find(".attn_output.") != std::string::npos) return "attn_out";
  if (tensor.find(".ffn_gate.") != std::string::npos || tensor.find(".ffn_up.") != std::string::npos) return "ffn_in";
  if (tensor.find(".ffn_down.") != std::string::npos) return "ffn_mid";
  if (tensor == "output.weight") return "head_in";
  return nullptr;
}

// "blk.N." -> N; the head ("output.weight") is layer -1, as the transformer observes it.
int layer_of(const std::string& tensor) { return tensor.rfind("blk.", 0) == 0 ? std::atoi(tensor.c_str() + 4) : -1; }

}  // namespace

Sensitivity measure_sensitivity(const Model& m, const QuantizeOptions& opt) {
  PMPD_CHECK(m.tokenizer, "{}: calibration needs the model's tokenizer", m.path);
  Tokenizer tok(*m.tokenizer);
  std::vector<int> ids = tok.encode(calibration_text(opt), false);
  PMPD_CHECK(!ids.empty(), "{}: calibration text is empty", opt.calib_path.empty() ? "built-in" : opt.calib_path);
  if (int(ids.size()) > opt.calib_tokens) ids.resize(size_t(opt.calib_tokens));
  Sensitivity s;
  s.source = opt.calib_path.empty() ? "built-in" : std::filesystem::path(opt.calib_path).filename().string();
  Transformer tf(m);
  tf.set_observer([&](int layer, const char* slot, const float* x, int n, int cols) {
    auto& acc = s.mean_sq[{layer, slot}];
    acc.resize(size_t(cols), 0.f);
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < cols; ++j) acc[size_t(j)] += x[size_t(t) * cols + j] * x[size_t(t) * cols + j];
  });
  const int chunk = std::min(256, m.config.max_seq_len - 1);
  std::vector<float> logits(size_t(m.config.vocab_size));
  for (size_t i = 0; i < ids.size(); i += size_t(chunk)) {
    std::vector<int> piece;
    if (tok.bos() >= 0) piece.push_back(tok.bos());
    piece.insert(piece.end(), ids.begin() + long(i), ids.begin() + long(std::min(ids.size(), i + size_t(chunk))));
    KVCache cache(m.config, int(piece.size()), false);
    tf.forward(piece.data(), int(piece.size()), cache, logits.data());
    s.tokens += int(piece.size());
  }
  for (auto& [key, v] : s.mean_sq)
    for (auto& x : v) x /= float(s.tokens);
  return s;
}

void quantize_model(const Model& m, const std::string& out_path, const QuantizeOptions& opt) {
  PMPD_CHECK(opt.method == "anyprec" || opt.method == "uniform" || opt.method == "dns",
             "quantize: unknown method \"{}\" (anyprec, uniform, dns)", opt.method);
  PMPD_CHECK(opt.sparse_fraction >= 0 && opt.sparse_fraction < 0.5, "quantize: sparse fraction {} outside [0, 0.5)",
             opt.sparse_fraction);
  PMPD_CHECK(opt.bits_min >= 1 && opt.bits_min <= opt.bits_max && opt.bits_max <= 8,
             "quantize: bit range {}:{} invalid (1 <= min <= max <= 8)", opt.bits_min, opt.bits_max);
  PMPD_CHECK(opt.group_size >= 0 && opt.group_size % 64 == 0, "quantize: group size {} must be 0 or a multiple of 64",
             opt.group_size);
  PMPD_CHECK(opt.method != "uniform" || opt.bits_min == opt.bits_max,
             "quantize: uniform stores one width; give --bits B (not a range)");
  PMPD_CHECK(!m.quantized(), "{}: the model is already quantized ({}); quantize the 16-bit original", m.path,
             m.quant.method);
  Sensitivity sens = measure_sensitivity(m, opt);
  const int per_layer = m.config.gated_mlp ? 7 : 6;
  const int total = per_layer * m.config.n_layers + (opt.quantize_head ? 1 : 0);
  int done = 0;

  ExportHooks hooks;
  hooks.metadata = [&](GgufWriter& w) {
    // An interrupted quantization keeps the layers it finished (the header names the
    // options; the key adds the versions of the source and the calibration text).
    w.set_resumable(file_fingerprint(m.path) + "|" + (opt.calib_path.empty() ? "" : file_fingerprint(opt.calib_path)),
                    [&](const std::vector<std::string>& kept) {
                      for (auto& name : kept)
                        if (name.size() > 7 && name.compare(name.size() - 7, 7, ".planes") == 0) ++done;
                      if (opt.resumed) opt.resumed(done, total);
                    });
    w.set_u32("pmpd.version", 1);
    w.set_string("pmpd.quant.method", opt.method);
    w.set_u32("pmpd.quant.bits_min", uint32_t(opt.bits_min));
    w.set_u32("pmpd.quant.bits_max", uint32_t(opt.bits_max));
    w.set_u32("pmpd.quant.seed", uint32_t(opt.seed));
    w.set_string("pmpd.calib.source", sens.source);
    w.set_u32("pmpd.calib.tokens", uint32_t(sens.tokens));
    w.set_string("pmpd.calib.sensitivity", "mean squared input activation per channel");
    if (opt.method == "dns") w.set_f32("pmpd.quant.sparse_fraction", float(opt.sparse_fraction));
    if (opt.method == "uniform") w.set_u32("pmpd.quant.group_size", uint32_t(opt.group_size));
    // Per-tensor kinds: every quantized weight and the form it is stored in.
    std::vector<std::string> kinds;
    const char* kind = opt.method == "dns" ? "bitplanes+sparse" : "bitplanes";
    for (int l = 0; l < m.config.n_layers; ++l)
      for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
        if (m.config.gated_mlp || std::string(t) != "ffn_gate")
          kinds.push_back(fmt::format("blk.{}.{}.weight={}", l, t, kind));
    if (opt.quantize_head) kinds.push_back(fmt::format("output.weight={}", kind));
    w.set_array_string("pmpd.quant.tensor_kinds", kinds);
  };
  // Each linear layer is quantized when the writer reaches its first tensor and freed
  // after its last, so memory holds one layer's output at a time (a 7B model streams).
  hooks.linear = [&](const std::string& name, const Linear& l, const std::vector<int>& order, GgufWriter& w,
                     const std::function<uint8_t*(size_t)>&) {
    const char* slot = slot_of(name);
    PMPD_CHECK(slot, "quantize: no sensitivity slot for {}", name);
    const std::vector<float>& s = sens.mean_sq.at({layer_of(name), slot});
    const int64_t rows = l.out(), cols = l.in();
    // Groups: uniform only; a group as wide as the row is just the per-row table.
    const int64_t group = opt.method == "uniform" && opt.group_size > 0 && opt.group_size < cols ? opt.group_size : 0;
    const int64_t groups = group > 0 ? (cols + group - 1) / group : 1;
    PMPD_CHECK(int64_t(s.size()) == cols, "quantize: {} has {} inputs but {} sensitivities", name, cols, s.size());
    struct Result {
      std::vector<uint8_t> planes;
      std::vector<std::vector<uint16_t>> tables;
      SparseOutliers sparse;
      std::vector<uint16_t> sparse_f16;
    };
    struct State {
      std::unique_ptr<Result> result;
    };
    auto state = std::make_shared<State>();
    auto compute = [&, state, order, name, &l = l, &s = s, rows, cols, group, groups]() -> Result& {
      if (state->result) return *state->result;
      auto res = std::make_unique<Result>();
      if (opt.method == "dns") {  // outliers are chosen on the whole matrix first
        std::vector<float> W(size_t(rows * cols));
        for (int64_t r = 0; r < rows; ++r) to_f32(l.w.dtype, l.w.row_ptr(order[size_t(r)]), &W[size_t(r * cols)], size_t(cols));
        res->sparse = select_outliers(W.data(), rows, cols, s.data(), opt.sparse_fraction);
        for (float v : res->sparse.val) res->sparse_f16.push_back(f32_to_f16(v));
      }
      const SparseOutliers& sparse = res->sparse;
      std::vector<uint8_t> codes(size_t(rows * cols));
      res->tables.resize(size_t(opt.bits_max - opt.bits_min + 1));
      for (int b = opt.bits_min; b <= opt.bits_max; ++b)
        res->tables[size_t(b - opt.bits_min)].resize((size_t(rows) * size_t(groups)) << b);
#pragma omp parallel
      {
        std::vector<float> row(static_cast<size_t>(cols)), row_sens(s);
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < rows; ++r) {
          const int src = order[size_t(r)];
          to_f32(l.w.dtype, l.w.row_ptr(src), row.data(), size_t(cols));
          if (!sparse.rowptr.empty()) {
            row_sens = s;
            for (int32_t i = sparse.rowptr[size_t(r)]; i < sparse.rowptr[size_t(r + 1)]; ++i)
              row_sens[size_t(sparse.col[size_t(i)])] = 0.f;
          }
          AnyPrecRow q = opt.method == "uniform"
                             ? quantize_row_uniform(row.data(), int(cols), opt.bits_max, int(group))
                             : quantize_row_anyprec(row.data(), row_sens.data(), int(cols), opt.bits_min, opt.bits_max,
                                                    opt.seed * 1000003u + uint64_t(src));
          std::copy(q.codes.begin(), q.codes.end(), codes.begin() + r * cols);
          for (int b = opt.bits_min; b <= opt.bits_max; ++b) {
            auto& t = q.tables[size_t(b - opt.bits_min)];
            uint16_t* dst = res->tables[size_t(b - opt.bits_min)].data() + ((size_t(r) * size_t(groups)) << b);
            for (size_t c = 0; c < t.size(); ++c) dst[c] = f32_to_f16(t[c]);
          }
        }
      }
      res->planes.resize(size_t(opt.bits_max) * size_t(rows) * size_t(kernels::BitPlaneMatrix::stride_for(cols)));
      pack_bitplanes(codes.data(), rows, cols, opt.bits_max, res->planes.data());
      if (opt.progress) opt.progress(++done, total, name);
      state->result = std::move(res);
      return *state->result;
    };
    auto copy = [](uint8_t* dst, const void* src, size_t n) {
      if (n) std::memcpy(dst, src, n);
    };
    const int64_t stride = kernels::BitPlaneMatrix::stride_for(cols);
    w.add_tensor_lazy(name + ".planes", DType::I8, {opt.bits_max, rows, stride},
                      [compute, copy](uint8_t* dst) { auto& r = compute(); copy(dst, r.planes.data(), r.planes.size()); });
    const bool dns = opt.method == "dns";
    for (int b = opt.bits_min; b <= opt.bits_max; ++b) {
      const bool last = b == opt.bits_max && !dns;
      std::vector<int64_t> shape = groups > 1 ? std::vector<int64_t>{rows, groups, int64_t(1) << b}
                                              : std::vector<int64_t>{rows, int64_t(1) << b};
      w.add_tensor_lazy(name + ".lut" + std::to_string(b), DType::F16, shape,
                        [compute, copy, state, b, last, lo = opt.bits_min](uint8_t* dst) {
                          auto& t = compute().tables[size_t(b - lo)];
                          copy(dst, t.data(), t.size() * 2);
                          if (last) state->result.reset();
                        });
    }
    if (dns) {
      const int64_t nnz = std::min<int64_t>(rows * cols, int64_t(std::llround(opt.sparse_fraction * double(rows * cols))));
      w.add_tensor_lazy(name + ".sp_rowptr", DType::I32, {rows + 1}, [compute, copy](uint8_t* dst) {
        auto& r = compute();
        copy(dst, r.sparse.rowptr.data(), r.sparse.rowptr.size() * 4);
      });
      w.add_tensor_lazy(name + ".sp_col", DType::I32, {nnz}, [compute, copy, nnz, name](uint8_t* dst) {
        auto& r = compute();
        PMPD_CHECK(int64_t(r.sparse.col.size()) == nnz, "quantize: {} kept {} outliers, expected {}", name,
                   r.sparse.col.size(), nnz);
        copy(dst, r.sparse.col.data(), r.sparse.col.size() * 4);
      });
      w.add_tensor_lazy(name + ".sp_val", DType::F16, {nnz}, [compute, copy, state](uint8_t* dst) {
        auto& r = compute();
        copy(dst, r.sparse_f16.data(), r.sparse_f16.size() * 2);
        state->result.reset();
      });
    }
    return true;
  };
  hooks.head = opt.quantize_head;
  export_gguf(m, out_path, std::nullopt, &hooks);
}

}  // namespace pmpd::quant
