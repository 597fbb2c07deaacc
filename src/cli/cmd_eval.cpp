// pmpd eval: runs a task with several methods (the paper's comparison table) and writes
// Markdown, CSV and an SVG plot of quality against average bits. Every finished example
// is appended to a cache file, so an interrupted run continues where it stopped.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/journal.h"
#include "core/mapped_file.h"
#include "decode/generator.h"
#include "eval/scoring.h"
#include "eval/stop_text.h"
#include "sched/schedule.h"
#include "sched/schedule_file.h"
#include "eval/task.h"

namespace pmpd::cli {

namespace {

namespace fs = std::filesystem;

struct Output {
  std::string text;
  double avg_bits = 0;
  int tokens = 0;
  double decode_seconds = 0;
};

struct Method {
  std::string name, schedule;  // schedule empty: the model's own precision
  const Model* model = nullptr;
};

// Greedy generation cut at the task's stop strings.
Output run_one(Transformer& tf, const Tokenizer& tok, const eval::Task& task, const eval::Example& ex,
               const std::string& schedule, int high) {
  GenerateOptions opt;
  opt.max_new_tokens = task.max_new_tokens;
  opt.eos = tok.eos();
  std::unique_ptr<Scheduler> sched;
  if (!schedule.empty()) {
    sched = make_scheduler(schedule, task.max_new_tokens, 0, high);
    opt.scheduler = sched.get();
  }
  std::vector<int> prompt = tok.encode(ex.prompt, tok.add_bos_default());
  PMPD_CHECK(int(prompt.size()) + task.max_new_tokens <= tf.config().max_seq_len,
             "example {}: prompt of {} tokens + {} new exceeds the context of {}", ex.index, prompt.size(),
             task.max_new_tokens, tf.config().max_seq_len);
  eval::StopText text(tok, task.stop);
  GenerateResult r = generate(tf, prompt, opt, [&](int id) { return text.push(id); });
  Output o;
  o.text = text.text();
  o.avg_bits = r.average_bits();
  o.tokens = int(r.tokens.size());
  o.decode_seconds = r.decode_seconds;
  return o;
}

std::string csv_escape(const std::string& s) {
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// A small scatter plot: average bits (x) against the first metric (y), one point per method.
std::string svg_plot(const std::vector<std::string>& names, const std::vector<double>& x, const std::vector<double>& y,
                     const std::string& ylabel, const std::string& title) {
  const double W = 560, H = 360, L = 60, R = 150, T = 40, B = 50;
  double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
  for (size_t i = 0; i < x.size(); ++i) x0 = std::min(x0, x[i]), x1 = std::max(x1, x[i]), y0 = std::min(y0, y[i]), y1 = std::max(y1, y[i]);
  if (x1 - x0 < 1e-9) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  double px = (x1 - x0) * 0.1, py = (y1 - y0) * 0.1;
  x0 -= px, x1 += px, y0 -= py, y1 += py;
  auto X = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n"
      "<text x=\"{}\" y=\"{}\">average bits</text>\n<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\">{}</text>\n",
      W, H, L, title, L, H - B, W - R, H - B, L, T, L, H - B, (W - R + L) / 2 - 30, H - 15, (H - B + T) / 2,
      (H - B + T) / 2, ylabel);
  for (int k = 0; k <= 4; ++k) {
    double vx = x0 + (x1 - x0) * k / 4, vy = y0 + (y1 - y0) * k / 4;
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.2f}</text>\n", X(vx), H - B + 16, vx);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.2f}</text>\n", L - 6, Y(vy) + 4, vy);
  }
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"};
  for (size_t i = 0; i < x.size(); ++i) {
    s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>\n", X(x[i]), Y(y[i]), colors[i % 7]);
    s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n", W - R + 15,
                     T + 18 * i, colors[i % 7], W - R + 25, T + 18 * i + 4, names[i]);
  }
  return s + "</svg>\n";
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a task with several methods (baselines and PMPD) and write the table");
  struct Args {
    std::string model, task, methods = "baseline-l,baseline-h,pmpd-static", split = "test", out = "eval-out", data,
                            reference, dns_model, schedule, scheduler, backend = "cpu";
    int limit = 0, high = 4, low = 3, threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "Quantized model (.gguf from pmpd quantize, anyprec)")->required();
  cmd->add_option("--task", a->task, "Task file (tasks/*.json; docs/tasks.md)")->required();
  cmd->add_option("--methods", a->methods,
                  "Comma-separated: fp16 (needs --reference), baseline-l, baseline-h, dns (needs --dns-model), "
                  "pmpd-static, pmpd-learned")
      ->capture_default_str();
  cmd->add_option("--split", a->split, "Task split to evaluate")->capture_default_str();
  cmd->add_option("--limit", a->limit, "Examples to use (0: all)")->capture_default_str();
  cmd->add_option("--data", a->data, "JSONL file replacing the split's data file");
  cmd->add_option("--high", a->high, "High width (baseline-h, PMPD's high phase)")->capture_default_str();
  cmd->add_option("--low", a->low, "Low width (baseline-l, PMPD's low phase)")->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "pmpd-static schedule (default: first-half-high:HIGH:LOW)");
  cmd->add_option("--scheduler", a->scheduler, "pmpd-learned: the learned scheduler, learned:FILE.gguf (pmpd train-scheduler)");
  cmd->add_option("--reference", a->reference, "16-bit model: the fp16 method and the agreement column");
  cmd->add_option("--dns-model", a->dns_model, "Model quantized with --method dns (run at --low bits)");
  cmd->add_option("-o,--out", a->out, "Output folder (results.md, results.csv, quality_vs_bits.svg, cache/)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_backend_option(cmd, a->backend);
  return [a]() {
    set_threads(a->threads);
    eval::Task task = eval::load_task(a->task);
    std::vector<eval::Example> examples = eval::load_examples(task, a->split, a->limit, a->data);
    auto q = load_quantized(a->model, "eval compares widths of a quantized model");
    PMPD_CHECK(a->low >= q->quant.bits_min && a->high <= q->quant.bits_max && a->low <= a->high,
               "--low {} / --high {} must lie in the file's {}..{}", a->low, a->high, q->quant.bits_min, q->quant.bits_max);
    std::unique_ptr<Model> ref, dns;
    if (!a->reference.empty()) ref = load_model(a->reference);
    if (!a->dns_model.empty()) dns = load_model(a->dns_model);
    const std::string H = std::to_string(a->high), L = std::to_string(a->low);
    std::vector<Method> methods;
    for (size_t pos = 0; pos <= a->methods.size();) {
      size_t end = std::min(a->methods.find(',', pos), a->methods.size());
      std::string m = a->methods.substr(pos, end - pos);
      pos = end + 1;
      if (m.empty()) continue;
      if (m == "fp16") {
        PMPD_CHECK(ref, "method fp16 needs --reference MODEL16");
        methods.push_back({m, "", ref.get()});
      } else if (m == "baseline-h") {
        methods.push_back({m, "fixed:" + H, q.get()});
      } else if (m == "baseline-l") {
        methods.push_back({m, "fixed:" + L, q.get()});
      } else if (m == "dns") {
        PMPD_CHECK(dns && dns->quant.method == "dns", "method dns needs --dns-model (quantized with --method dns)");
        methods.push_back({m, "fixed:" + L, dns.get()});
      } else if (m == "pmpd-static") {
        methods.push_back({m, a->schedule.empty() ? "first-half-high:" + H + ":" + L : a->schedule, q.get()});
      } else if (m == "pmpd-learned") {
        PMPD_CHECK(a->scheduler.rfind("learned:", 0) == 0, "method pmpd-learned needs --scheduler learned:FILE.gguf");
        methods.push_back({m, a->scheduler, q.get()});
      } else {
        fail("unknown method \"{}\" (fp16, baseline-l, baseline-h, dns, pmpd-static, pmpd-learned)", m);
      }
    }
    PMPD_CHECK(!methods.empty(), "--methods is empty");
    Tokenizer tok(*q->tokenizer);
    fs::create_directories(fs::path(a->out) / "cache");
    // One journal (core/journal.h) per method, keyed by everything that changes its outputs,
    // the versions of the files included: a re-quantized model or an edited task is new work.
    // --limit is not part of it: examples are the split's first N, so a longer run reuses them.
    auto cache_key = [&](const Method& m) {
      std::string key = fmt::format("eval v2|{}|{}|{}|{}|{}|{}|{}", file_fingerprint(a->task), a->split,
                                    a->data.empty() ? "" : file_fingerprint(a->data), file_fingerprint(m.model->path),
                                    m.schedule, task.max_new_tokens, a->high);
      if (is_schedule_file(m.schedule)) key += "|" + file_fingerprint(m.schedule);
      if (m.schedule.rfind("learned:", 0) == 0) key += "|" + file_fingerprint(m.schedule.substr(8));
      return key;
    };
    std::map<std::string, std::vector<Output>> outputs;
    int total = int(methods.size() * examples.size()), done = 0;
    Progress bar("eval");
    for (auto& m : methods) {
      std::vector<Output>& outs = outputs[m.name];
      outs.assign(examples.size(), Output{});
      const std::string key = cache_key(m);
      Journal cache((fs::path(a->out) / "cache" / fmt::format("{}-{:016x}.jsonl", m.name, std::hash<std::string>{}(key))).string(),
                    key);
      // An example finished by an earlier run (null where none, or where its record is malformed).
      auto cached_output = [&](size_t i) -> const Json* {
        const Json* j = cache.find(std::to_string(i));
        const bool ok = j && j->is_object() && j->value("text", Json()).is_string() &&
                        j->value("avg_bits", Json()).is_number() && j->value("tokens", Json()).is_number_integer() &&
                        j->value("decode_seconds", Json()).is_number();
        return ok ? j : nullptr;
      };
      size_t cached = 0;
      for (size_t i = 0; i < examples.size(); ++i) cached += cached_output(i) != nullptr;
      if (cached > 0)
        std::fprintf(stderr, "eval: %s: %zu of %zu examples read back from %s\n", m.name.c_str(), cached,
                     examples.size(), cache.path().c_str());
      std::unique_ptr<Transformer> tf;  // built only where an example is left to run
      for (size_t i = 0; i < examples.size(); ++i) {
        if (const Json* j = cached_output(i)) {
          outs[i] = {(*j)["text"].get<std::string>(), (*j)["avg_bits"].get<double>(), (*j)["tokens"].get<int>(),
                     (*j)["decode_seconds"].get<double>()};
        } else {
          if (!tf) tf = std::make_unique<Transformer>(*m.model, parse_backend(a->backend));
          outs[i] = run_one(*tf, tok, task, examples[i], m.model->quantized() ? m.schedule : "", a->high);
          cache.append(std::to_string(i), {{"text", outs[i].text}, {"avg_bits", outs[i].avg_bits},
                                           {"tokens", outs[i].tokens}, {"decode_seconds", outs[i].decode_seconds}});
        }
        bar.update(++done, total, m.name);
      }
    }
    std::vector<std::string> cols = task.metrics;
    if (outputs.count("fp16")) cols.push_back("agreement");
    std::string md = fmt::format("Task `{}` ({}, {} examples), model `{}`; high {} bits, low {} bits.\n\n| method | schedule | average bits |",
                                 task.name, a->split, examples.size(), a->model, a->high, a->low);
    std::string csv = "method,schedule,average_bits";
    for (auto& c : cols) md += " " + c + " |", csv += "," + c;
    md += " decode tok/s |\n|---|---|---|";
    csv += ",decode_tokens_per_second\n";
    for (size_t k = 0; k < cols.size() + 1; ++k) md += "---|";
    md += "\n";
    std::vector<std::string> names;
    std::vector<double> xs, ys;
    for (auto& m : methods) {
      const auto& outs = outputs[m.name];
      std::vector<std::string> hyps;
      double bits = 0, toks = 0, secs = 0;
      for (auto& o : outs) hyps.push_back(o.text), bits += o.avg_bits, toks += std::max(o.tokens - 1, 0), secs += o.decode_seconds;
      bits /= double(outs.size());
      // DNS also reads its sparse outliers: count them in its bits, as the paper does.
      if (m.model->quant.method == "dns") {
        double extra = 0, weights = 0;
        for (auto& lw : m.model->layers)
          for (const Linear* l : {&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down})
            if (l->q) {
              extra += double(l->q->nnz) * 48 + double(l->q->rows + 1) * 32;
              weights += double(l->q->rows) * double(l->q->cols);
            }
        bits += weights > 0 ? extra / weights : 0;
      }
      std::vector<std::string> fp16_texts;
      if (outputs.count("fp16"))
        for (auto& o : outputs["fp16"]) fp16_texts.push_back(o.text);
      std::map<std::string, double> score;
      for (auto& c : cols) score[c] = eval::score_metric(c, hyps, examples, fp16_texts.empty() ? nullptr : &fp16_texts);
      const std::string sched = m.model->quantized() ? m.schedule : "16-bit";
      md += fmt::format("| {} | `{}` | {:.2f} |", m.name, sched, bits);
      csv += fmt::format("{},{},{:.4f}", m.name, csv_escape(sched), bits);
      for (auto& c : cols) md += fmt::format(" {:.2f} |", score[c]), csv += fmt::format(",{:.4f}", score[c]);
      double tps = secs > 0 ? toks / secs : 0;
      md += fmt::format(" {:.1f} |\n", tps);
      csv += fmt::format(",{:.2f}\n", tps);
      names.push_back(m.name), xs.push_back(bits), ys.push_back(score[cols[0]]);
      // The default static schedule lowers the width half way through max_new_tokens: outputs
      // that all end before that (short translations) run pmpd-static as baseline-h, which
      // reads like a broken method unless said.
      if (m.name == "pmpd-static" && a->schedule.empty() && m.model->quantized() &&
          std::all_of(outs.begin(), outs.end(), [&](const Output& o) { return o.avg_bits >= a->high - 1e-9; })) {
        const int steps = parse_schedule(m.schedule, task.max_new_tokens, 0).segments.front().second;
        std::fprintf(stderr,
                     "eval: note: pmpd-static's default schedule %s lowers the width after %d decode steps (half of "
                     "the task's max_new_tokens, %d); no output got that far (%.1f tokens on average), so it ran at "
                     "%d bits throughout, as baseline-h. Pass --schedule: one from `pmpd calibrate`, or e.g. %s:4,%s\n",
                     m.schedule.c_str(), steps, task.max_new_tokens, toks / double(std::max<size_t>(outs.size(), 1)) + 1,
                     a->high, H.c_str(), L.c_str());
      }
    }
    std::fputs(("\n" + md).c_str(), stdout);
    write_file_atomic((fs::path(a->out) / "results.md").string(), md);
    write_file_atomic((fs::path(a->out) / "results.csv").string(), csv);
    write_file_atomic((fs::path(a->out) / "quality_vs_bits.svg").string(),
                      svg_plot(names, xs, ys, cols[0], task.name + ": " + cols[0] + " vs average bits"));
    std::fprintf(stderr, "wrote %s/results.md, results.csv, quality_vs_bits.svg\n", a->out.c_str());
    return 0;
  };
}

}  // namespace pmpd::cli
