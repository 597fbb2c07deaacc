// pmpd patterns: the paper's study of precision patterns at equal average bits
// (first half high, middle half high, last half high, alternating), beside the single
// low and high widths: agreement with the 16-bit model's output and perplexity of each
// continuation under the 16-bit model.
#include <fmt/format.h>

#include <cmath>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "decode/generator.h"
#include "eval/rouge.h"

namespace pmpd::cli {

namespace {

// Mean NLL of `cont` after `prompt` under model m (teacher forcing).
double continuation_nll(Transformer& tf, const std::vector<int>& prompt, const std::vector<int>& cont) {
  const ModelConfig& c = tf.config();
  std::vector<int> seq = prompt;
  seq.insert(seq.end(), cont.begin(), cont.end());
  KVCache cache(c, int(seq.size()), true);
  std::vector<float> logits(seq.size() * size_t(c.vocab_size));
  tf.forward(seq.data(), int(seq.size()), cache, logits.data(), true);
  double nll = 0;
  for (size_t i = 0; i < cont.size(); ++i) {
    const float* l = &logits[(prompt.size() - 1 + i) * size_t(c.vocab_size)];
    float mx = *std::max_element(l, l + c.vocab_size);
    double z = 0;
    for (int v = 0; v < c.vocab_size; ++v) z += std::exp(double(l[v] - mx));
    nll += std::log(z) + mx - l[cont[i]];
  }
  return nll / double(std::max<size_t>(cont.size(), 1));
}

}  // namespace

Action add_patterns(CLI::App& app) {
  auto* cmd = app.add_subcommand("patterns", "Compare precision patterns at equal average bits against the 16-bit model");
  struct Args {
    std::string model, reference, prompts, json_out;
    int high = 4, low = 2, n = 32, limit = 50, words = 5, threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "Quantized model (.gguf from pmpd quantize)")->required();
  cmd->add_option("--reference", a->reference, "The 16-bit model it was quantized from")->required();
  cmd->add_option("--prompts", a->prompts, "Text file: each line's first --words words are a prompt")->required();
  cmd->add_option("--high", a->high, "High width")->capture_default_str();
  cmd->add_option("--low", a->low, "Low width")->capture_default_str();
  cmd->add_option("-n", a->n, "Tokens to generate per prompt")->capture_default_str()->check(CLI::Range(2, 4096));
  cmd->add_option("--limit", a->limit, "Prompts to use")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--words", a->words, "Words of each line used as the prompt")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--json", a->json_out, "Also write the table as JSON");
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  return [a]() {
    set_threads(a->threads);
    auto q = load_model(a->model);
    auto ref = load_model(a->reference);
    PMPD_CHECK(q->quantized(), "{}: not a quantized model", a->model);
    PMPD_CHECK(!ref->quantized(), "{}: the reference must be the 16-bit model", a->reference);
    PMPD_CHECK(q->tokenizer, "{}: no tokenizer", a->model);
    PMPD_CHECK(a->low >= q->quant.bits_min && a->high <= q->quant.bits_max && a->low < a->high,
               "widths {}..{} must lie in the file's {}..{} with low < high", a->low, a->high, q->quant.bits_min,
               q->quant.bits_max);
    Tokenizer tok(*q->tokenizer);
    std::vector<std::string> prompts;
    std::string text = read_text_file(a->prompts);
    for (size_t pos = 0; pos < text.size() && int(prompts.size()) < a->limit;) {
      size_t end = std::min(text.find('\n', pos), text.size());
      std::string line = text.substr(pos, end - pos), p;
      pos = end + 1;
      int w = 0;
      size_t i = 0;
      while (i < line.size() && w < a->words) {
        while (i < line.size() && line[i] == ' ') ++i;
        size_t j = line.find(' ', i);
        if (j == std::string::npos) j = line.size();
        if (j > i) p += (p.empty() ? "" : " ") + line.substr(i, j - i), ++w;
        i = j;
      }
      if (w == a->words) prompts.push_back(p);
    }
    PMPD_CHECK(!prompts.empty(), "{}: no line has {} words", a->prompts, a->words);
    const std::string H = std::to_string(a->high), L = std::to_string(a->low);
    const std::vector<std::pair<std::string, std::string>> methods = {
        {"single high (" + H + ")", "fixed:" + H},           {"first half high", "first-half-high:" + H + ":" + L},
        {"middle half high", "middle-half-high:" + H + ":" + L}, {"last half high", "last-half-high:" + H + ":" + L},
        {"alternate", "alternate:" + H + ":" + L},           {"single low (" + L + ")", "fixed:" + L}};
    struct Acc {
      double bits = 0, rouge = 0, nll = 0, exact = 0;
    };
    std::vector<Acc> acc(methods.size());
    Transformer tq(*q), tr(*ref);
    Progress bar("patterns");
    for (size_t pi = 0; pi < prompts.size(); ++pi) {
      std::vector<int> ids = tok.encode(prompts[pi], tok.add_bos_default());
      GenerateOptions opt;
      opt.max_new_tokens = a->n;
      opt.stop_at_eos = false;  // equal lengths keep the average bits equal across patterns
      GenerateResult base = generate(tr, ids, opt);
      std::string base_text = tok.decode(base.tokens);
      for (size_t mi = 0; mi < methods.size(); ++mi) {
        auto s = make_scheduler(methods[mi].second, a->n, a->high, a->high);
        opt.scheduler = s.get();
        GenerateResult r = generate(tq, ids, opt);
        acc[mi].bits += r.average_bits();
        acc[mi].rouge += eval::rouge_l_f1(tok.decode(r.tokens), base_text);
        acc[mi].exact += r.tokens == base.tokens;
        acc[mi].nll += continuation_nll(tr, ids, r.tokens);
      }
      bar.update(int(pi + 1), int(prompts.size()), prompts[pi]);
    }
    const double n = double(prompts.size());
    fmt::print("\n{} prompts from {}, {} tokens each, prefill at {} bits; reference: {}\n\n", prompts.size(), a->prompts,
               a->n, a->high, a->reference);
    fmt::print("| pattern | schedule | average bits | ROUGE-L vs 16-bit | identical to 16-bit | perplexity under 16-bit |\n");
    fmt::print("|---|---|---|---|---|---|\n");
    Json out = Json::array();
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      const Acc& x = acc[mi];
      fmt::print("| {} | `{}` | {:.2f} | {:.4f} | {:.0f}% | {:.3f} |\n", methods[mi].first, methods[mi].second, x.bits / n,
                 x.rouge / n, 100 * x.exact / n, std::exp(x.nll / n));
      out.push_back({{"pattern", methods[mi].first}, {"schedule", methods[mi].second}, {"average_bits", x.bits / n},
                     {"rouge_l", x.rouge / n}, {"identical", x.exact / n}, {"perplexity", std::exp(x.nll / n)}});
    }
    if (!a->json_out.empty()) write_file_atomic(a->json_out, out.dump(1));
    return 0;
  };
}

}  // namespace pmpd::cli
