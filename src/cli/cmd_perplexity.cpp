// pmpd perplexity: perplexity of a text under the model, at each stored bit width.
#include <fmt/format.h>

#include <cmath>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "model/transformer.h"

namespace pmpd::cli {

namespace {

// Mean negative log-likelihood of ids[1..] given the preceding tokens, in windows of `ctx`.
double mean_nll(Transformer& tf, const std::vector<int>& ids, int ctx, int bits, int& count) {
  const ModelConfig& c = tf.config();
  double nll = 0;
  count = 0;
  std::vector<float> logits;
  for (size_t start = 0; start + 1 < ids.size(); start += size_t(ctx - 1)) {
    size_t len = std::min(ids.size() - start, size_t(ctx));
    KVCache cache(c, int(len), true);
    logits.resize(len * size_t(c.vocab_size));
    tf.forward(ids.data() + start, int(len), cache, logits.data(), true, bits);
    for (size_t t = 0; t + 1 < len; ++t) {
      const float* l = logits.data() + t * size_t(c.vocab_size);
      float mx = *std::max_element(l, l + c.vocab_size);
      double z = 0;
      for (int v = 0; v < c.vocab_size; ++v) z += std::exp(double(l[v] - mx));
      nll += std::log(z) + mx - l[ids[start + t + 1]];
      ++count;
    }
    if (start + len >= ids.size()) break;
  }
  return nll / std::max(count, 1);
}

}  // namespace

Action add_perplexity(CLI::App& app) {
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text at each bit width of a (quantized) model");
  struct Args {
    std::string model, text, bits, json_out;
    int ctx = 256, threads = 0;
    std::string backend = "cpu";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "Model (quantized .gguf for several widths)")->required();
  cmd->add_option("--text", a->text, "UTF-8 text file (.txt, or .jsonl with a \"text\" field per line)")->required();
  cmd->add_option("--bits", a->bits, "Widths to evaluate, B or MIN:MAX (default: all stored)");
  cmd->add_option("--ctx", a->ctx, "Window length in tokens")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--json", a->json_out, "Also write the results as JSON to this file");
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_backend_option(cmd, a->backend);
  return [a]() {
    set_threads(a->threads);
    auto m = load_model(a->model);
    PMPD_CHECK(m->tokenizer, "{}: perplexity needs the model's tokenizer", a->model);
    Tokenizer tok(*m->tokenizer);
    std::string text;
    if (a->text.ends_with(".jsonl")) {
      for_each_jsonl(a->text, [&](const Json& j, const std::string& where) {
        text += json_get<std::string>(j, "text", where) + "\n";
        return true;
      });
    } else {
      text = read_text_file(a->text);
    }
    std::vector<int> ids = tok.encode(text, tok.add_bos_default());
    PMPD_CHECK(ids.size() >= 2, "{}: text too short", a->text);
    int ctx = std::min(a->ctx, m->config.max_seq_len);
    std::vector<int> widths;
    if (!m->quantized()) {
      widths = {0};
    } else {
      auto [lo, hi] = a->bits.empty() ? std::pair{m->quant.bits_min, m->quant.bits_max} : parse_bit_range(a->bits);
      for (int b = lo; b <= hi; ++b) widths.push_back(b);
    }
    Transformer tf(*m, parse_backend(a->backend));
    Json out = Json::array();
    fmt::print("{:>6}  {:>10}  {:>8}\n", "bits", "perplexity", "tokens");
    for (int b : widths) {
      int count = 0;
      double ppl = std::exp(mean_nll(tf, ids, ctx, b, count));
      std::string label = b == 0 ? "16" : std::to_string(b);
      fmt::print("{:>6}  {:>10.4f}  {:>8}\n", label, ppl, count);
      out.push_back({{"bits", b == 0 ? 16 : b}, {"perplexity", ppl}, {"tokens", count}});
    }
    if (!a->json_out.empty()) write_file_atomic(a->json_out, out.dump(1));
    return 0;
  };
}

}  // namespace pmpd::cli
