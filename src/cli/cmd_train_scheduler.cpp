// pmpd train-scheduler: labels prompts by running the engine (calib/scheduler_training),
// caches the dataset beside the output, trains the learned scheduler and saves it as GGUF.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "calib/scheduler_training.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "eval/task.h"

namespace pmpd::cli {

namespace {

struct PromptSource {
  std::string text;
  std::vector<std::string> stop;
};

// A task file gives its rendered prompts (and stop strings); any other file gives
// random-length prefixes of its lines (or of the "text" field of JSONL lines).
std::vector<PromptSource> read_prompts(const std::string& path, const std::string& split, int limit, int min_words,
                                       int max_words, std::mt19937_64& rng) {
  std::vector<PromptSource> out;
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    eval::Task t = eval::load_task(path);
    for (auto& e : eval::load_examples(t, split, limit)) out.push_back({e.prompt, t.stop});
    return out;
  }
  std::ifstream in(path);
  PMPD_CHECK(in, "{}: cannot open", path);
  std::uniform_int_distribution<int> words(min_words, max_words);
  for (std::string line; std::getline(in, line) && (limit <= 0 || int(out.size()) < limit);) {
    if (!line.empty() && line[0] == '{') {
      Json j = Json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("text") && j["text"].is_string()) line = j["text"].get<std::string>();
    }
    std::istringstream ws(line);
    std::vector<std::string> w;
    for (std::string x; ws >> x;) w.push_back(x);
    const int k = words(rng);
    if (int(w.size()) <= k) continue;  // too short to leave something to continue
    std::string p;
    for (int i = 0; i < k; ++i) p += (i ? " " : "") + w[size_t(i)];
    out.push_back({p, {}});
  }
  return out;
}

}  // namespace

Action add_train_scheduler(CLI::App& app) {
  auto* cmd = app.add_subcommand("train-scheduler", "Train the learned precision-switch scheduler on prompts of several tasks");
  struct Args {
    std::vector<std::string> data;
    std::string model, out, reference, split = "calibration", dataset;
    int limit = 300, high = 4, low = 3, prefill = 0, n = 32, layer = -1, min_words = 4, max_words = 16, threads = 0;
    calib::TrainOptions train;
    bool relabel = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "Quantized model (.gguf from pmpd quantize)")->required();
  cmd->add_option("--data", a->data, "Task files (*.json: their --split prompts) or text/JSONL files (line prefixes)")
      ->required()->expected(1, 64);
  cmd->add_option("-o,--out", a->out, "Scheduler file to write (.gguf)")->required();
  cmd->add_option("--split", a->split, "Split of task files to take prompts from")->capture_default_str();
  cmd->add_option("--limit", a->limit, "Prompts per data file (0: all)")->capture_default_str();
  cmd->add_option("--reference", a->reference, "16-bit model whose greedy output labels are measured against (default: the highest width)");
  cmd->add_option("--high", a->high, "High width")->capture_default_str();
  cmd->add_option("--low", a->low, "Low width")->capture_default_str();
  cmd->add_option("--prefill-bits", a->prefill, "Prefill width (default: --high)");
  cmd->add_option("-n", a->n, "New tokens per prompt when labelling; classes switch after 0, n/3, 2n/3 or n steps")
      ->capture_default_str()->check(CLI::Range(3, 4096));
  cmd->add_option("--layer", a->layer, "KV layer the scheduler reads (negative: from the last)")->capture_default_str();
  cmd->add_option("--min-words", a->min_words, "Shortest text-file prompt, in words")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--max-words", a->max_words, "Longest text-file prompt, in words")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--hidden", a->train.hidden, "MLP width")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--epochs", a->train.epochs, "Most training epochs (early stopping on validation loss)")->capture_default_str();
  cmd->add_option("--lr", a->train.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--seed", a->train.seed, "Seed (prompt lengths, initialisation, split, shuffling)")->capture_default_str();
  cmd->add_option("--dataset", a->dataset, "Dataset cache (default: OUT.dataset); reused when the settings match");
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  return [a]() {
    set_threads(a->threads);
    PMPD_CHECK(a->min_words <= a->max_words, "--min-words must not exceed --max-words");
    auto q = load_quantized(a->model, "the scheduler switches widths of a quantized model");
    calib::LabelOptions lo;
    lo.high_bits = a->high, lo.low_bits = a->low, lo.prefill_bits = a->prefill ? a->prefill : a->high;
    lo.max_new_tokens = a->n, lo.layer = a->layer;
    for (int b : {lo.high_bits, lo.low_bits, lo.prefill_bits})
      PMPD_CHECK(b >= q->quant.bits_min && b <= q->quant.bits_max, "width {} outside the file's {}..{}", b,
                 q->quant.bits_min, q->quant.bits_max);
    PMPD_CHECK(lo.low_bits < lo.high_bits, "--low must be below --high");
    std::unique_ptr<Model> ref;
    if (!a->reference.empty()) ref = load_model(a->reference);
    lo.reference = ref.get();
    Tokenizer tok(*q->tokenizer);

    std::mt19937_64 rng(a->train.seed);
    std::vector<PromptSource> prompts;
    for (auto& f : a->data) {
      auto p = read_prompts(f, a->split, a->limit, a->min_words, a->max_words, rng);
      std::fprintf(stderr, "%s: %zu prompts\n", f.c_str(), p.size());
      prompts.insert(prompts.end(), p.begin(), p.end());
    }
    PMPD_CHECK(prompts.size() >= 10, "only {} prompts; training needs at least 10", prompts.size());

    // The dataset: reuse what a previous run with the same settings made.
    const std::string ds = a->dataset.empty() ? a->out + ".dataset" : a->dataset;
    std::string key = fmt::format("v2|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", file_fingerprint(a->model),
                                  a->reference.empty() ? "" : file_fingerprint(a->reference), lo.prefill_bits, lo.high_bits, lo.low_bits, lo.max_new_tokens, lo.layer,
                                  a->split, a->limit, a->min_words, a->max_words);
    for (auto& f : a->data) key += "|" + f;
    key += fmt::format("|seed {}", a->train.seed);
    std::vector<calib::SwitchExample> data = calib::read_dataset(ds, key);
    if (data.size() > prompts.size()) data.resize(prompts.size());
    const size_t classes = calib::default_class_steps(lo.max_new_tokens).size();
    for (auto& e : data)
      if (size_t(e.label) >= classes || e.features.heads != q->config.n_kv_heads || e.features.head_dim != q->config.head_dim) {
        std::fprintf(stderr, "%s: records that do not fit this model; labelling again\n", ds.c_str());
        data.clear();
        break;
      }
    if (!data.empty()) std::fprintf(stderr, "%s: reusing %zu labelled prompts\n", ds.c_str(), data.size());
    if (data.size() < prompts.size()) {
      calib::DatasetWriter writer(ds, key, data);
      Transformer tf(*q);
      std::unique_ptr<Transformer> rtf;
      if (ref) rtf = std::make_unique<Transformer>(*ref);
      Progress bar("labelling");
      for (size_t i = data.size(); i < prompts.size(); ++i) {
        auto ids = tok.encode(prompts[i].text, tok.add_bos_default());
        data.push_back(calib::label_prompt(tf, rtf.get(), tok, ids, prompts[i].stop, lo));
        writer.append(data.back());
        bar.update(int(i + 1), int(prompts.size()), "");
      }
    }
    const std::vector<int> steps = calib::default_class_steps(lo.max_new_tokens);
    std::vector<int> hist(steps.size(), 0);
    for (auto& e : data) ++hist[size_t(e.label)];
    std::string h;
    for (size_t c = 0; c < steps.size(); ++c) h += fmt::format("{}switch after {}: {}", c ? ", " : "", steps[c], hist[c]);
    std::fprintf(stderr, "labels: %s\n", h.c_str());

    calib::TrainReport rep;
    SwitchNetShape shape;
    shape.classes = int(steps.size());
    SwitchModel m;
    m.net = calib::train_switch_net(data, shape, a->train, &rep);
    m.layer = lo.layer < 0 ? lo.layer + q->config.n_layers : lo.layer;
    m.prefill_bits = lo.prefill_bits, m.high_bits = lo.high_bits, m.low_bits = lo.low_bits;
    m.steps = steps;
    m.max_new_tokens = lo.max_new_tokens;
    m.save(a->out);
    std::printf("trained on %d prompts, validated on %d: accuracy %.1f%% train, %.1f%% validation (always the most common "
                "label: %.1f%%); best epoch %d of %d\n",
                rep.train_size, rep.val_size, 100 * rep.train_accuracy, 100 * rep.val_accuracy,
                100 * rep.majority_val_accuracy, rep.best_epoch, rep.epochs_run);
    std::fprintf(stderr, "wrote %s (use --scheduler learned:%s)\n", a->out.c_str(), a->out.c_str());
    return 0;
  };
}

}  // namespace pmpd::cli
