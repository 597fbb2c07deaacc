// pmpd run: generate text from a prompt, streaming tokens as they are chosen.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/json_file.h"
#include "decode/generator.h"
#include "tokenizer/chat_template.h"

namespace pmpd::cli {

namespace {

struct RunArgs {
  std::string model, tokenizer, prompt, prompt_ids, chat = "none", system, kv = "f16", schedule, scheduler, backend = "cpu";
  int n = 64, threads = 0, bits = 0, prefill_bits = 0;
  bool no_color = false;
  SamplerParams sampler;
  bool json = false, logits = false, no_bos = false, ignore_eos = false;
};

std::vector<int> parse_ids(const std::string& s) {
  std::vector<int> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string tok = s.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(0, 1);
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    char* end = nullptr;
    long v = std::strtol(tok.c_str(), &end, 10);
    PMPD_CHECK(!tok.empty() && end && *end == '\0' && v >= 0 && v < (1L << 30),
               "--prompt-ids: \"{}\" is not a token id", tok);
    ids.push_back(int(v));
    i = j + 1;
  }
  return ids;
}

int run(const RunArgs& a) {
  set_threads(a.threads);
  std::string path = a.model.empty() ? default_model_path() : a.model;
  auto model = load_model(path, {a.tokenizer});
  const ModelConfig& c = model->config;
  std::optional<Tokenizer> tok;
  if (model->tokenizer) tok.emplace(*model->tokenizer);

  std::vector<int> prompt;
  if (!a.prompt_ids.empty()) {
    PMPD_CHECK(a.prompt.empty(), "give either --prompt or --prompt-ids, not both");
    prompt = parse_ids(a.prompt_ids);
    for (int id : prompt)
      PMPD_CHECK(id < c.vocab_size, "--prompt-ids: token id {} outside the vocabulary of {}", id, c.vocab_size);
  } else {
    PMPD_CHECK(tok, "{}: the model has no tokenizer; use --prompt-ids or --tokenizer", path);
    ChatTemplate tmpl = a.chat == "auto" ? detect_chat_template(tok->data().chat_template) : chat_template_from_name(a.chat);
    std::vector<ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", a.prompt});
    std::string text = tmpl == ChatTemplate::None ? a.prompt : render_chat(tmpl, msgs);
    prompt = tok->encode(text, !a.no_bos && tok->add_bos_default());
  }
  PMPD_CHECK(!prompt.empty(), "the prompt is empty; give --prompt TEXT or --prompt-ids");

  GenerateOptions opt;
  opt.max_new_tokens = a.n;
  opt.sampler = a.sampler;
  opt.eos = tok ? tok->eos() : -1;
  opt.stop_at_eos = !a.ignore_eos;
  opt.keep_logits = a.logits;
  opt.kv_f16 = a.kv == "f16";
  opt.bits = a.bits;
  if (a.bits > 0 || !a.schedule.empty() || !a.scheduler.empty() || a.prefill_bits > 0)
    PMPD_CHECK(model->quantized(), "--bits, --prefill-bits, --schedule and --scheduler need a model quantized by "
               "`pmpd quantize`; {} is 16-bit", path);
  PMPD_CHECK(a.schedule.empty() || a.scheduler.empty(), "give either --schedule or --scheduler, not both");
  PMPD_CHECK(a.bits == 0 || (a.schedule.empty() && a.scheduler.empty()), "--bits fixes one width; drop it or the schedule");
  std::unique_ptr<Scheduler> scheduler;
  const int top = model->quantized() ? model->quant.bits_max : 16;
  if (model->quantized()) {
    scheduler = make_scheduler(!a.scheduler.empty() ? a.scheduler : a.schedule, a.n, a.prefill_bits, a.bits ? a.bits : top);
    opt.scheduler = scheduler.get();
  }
  // Colour each token by its width: the highest plain, lower ones in warmer colours.
  const bool color = !a.json && !a.no_color && isatty(fileno(stdout));
  static const char* kWarm[] = {"", "\033[38;5;220m", "\033[38;5;214m", "\033[38;5;208m", "\033[38;5;202m",
                                "\033[38;5;196m", "\033[38;5;160m", "\033[38;5;124m"};
  int token_index = 0;
  std::vector<int> widths;

  std::optional<StreamDecoder> stream;
  if (tok) stream.emplace(*tok);
  Transformer tf(*model, parse_backend(a.backend));
  GenerateResult r;
  auto on_token = [&](int id) {
    ++token_index;
    if (a.json) return true;
    // generate() records the width before calling us; read it from the scheduler's trace
    const int w = r.token_bits.empty() ? 0 : r.token_bits.back();
    const char* col = color && w > 0 && w < top ? kWarm[std::min(top - w, 7)] : "";
    std::string text = stream ? (id != opt.eos || !opt.stop_at_eos ? stream->push(id) : std::string())
                              : std::to_string(id) + " ";
    std::fputs(col, stdout);
    std::fputs(text.c_str(), stdout);
    if (*col) std::fputs("\033[0m", stdout);
    std::fflush(stdout);
    return true;
  };
  r = generate(tf, prompt, opt, on_token, &r);
  const double prefill_tps = r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0;
  const int decode_steps = std::max<int>(int(r.tokens.size()) - 1, 0);
  const double decode_tps = r.decode_seconds > 0 ? decode_steps / r.decode_seconds : 0;
  if (a.json) {
    Json j;
    j["model"] = path;
    j["prompt_ids"] = prompt;
    j["generated_ids"] = r.tokens;
    if (tok) {
      j["prompt_text"] = a.prompt;
      std::string text;
      for (int id : r.tokens)
        if (id != opt.eos) text += tok->token_bytes(id);
      j["text"] = text;
    }
    j["stopped_at_eos"] = r.hit_eos;
    j["prefill_bits"] = r.prefill_bits;
    j["average_bits"] = r.average_bits();
    if (scheduler) j["scheduler"] = scheduler->describe();
    j["tokens"] = Json::array();
    for (size_t i = 0; i < r.tokens.size(); ++i)
      j["tokens"].push_back({{"id", r.tokens[i]}, {"bits", r.token_bits[i]},
                             {"text", tok ? tok->token_bytes(r.tokens[i]) : std::string()}});
    j["timings"] = {{"prefill_seconds", r.prefill_seconds}, {"decode_seconds", r.decode_seconds},
                    {"prefill_tokens_per_second", prefill_tps}, {"decode_tokens_per_second", decode_tps}};
    if (a.logits) {
      j["logits"] = Json::array();
      for (auto& l : r.logits) j["logits"].push_back(l);
    }
    std::puts(j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    if (stream) std::fputs(stream->flush().c_str(), stdout);
    std::puts("");
    std::fprintf(stderr, "prompt %d tokens at %d bits, %.1f tok/s | generated %zu tokens, average %.2f bits, %.1f tok/s%s%s\n",
                 r.prompt_tokens, r.prefill_bits, prefill_tps, r.tokens.size(), r.average_bits(), decode_tps,
                 scheduler ? " | " : "", scheduler ? scheduler->describe().c_str() : "");
  }
  return 0;
}

}  // namespace

Action add_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("-m,--model", a->model, "Model: Hugging Face directory, .gguf or llama2.c .bin (default: the project's model)");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer file or directory, overriding the one beside the model");
  cmd->add_option("-p,--prompt", a->prompt, "Prompt text (UTF-8)");
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids, e.g. 1,2,3");
  cmd->add_option("-n,--n-predict", a->n, "Number of tokens to generate")->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temp", a->sampler.temperature, "Temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", a->sampler.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", a->sampler.top_p, "Nucleus sampling mass (1: off)")->capture_default_str();
  cmd->add_option("--min-p", a->sampler.min_p, "Drop tokens below min-p x the top probability (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", a->sampler.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", a->sampler.repeat_last_n, "Tokens the penalty looks back at")->capture_default_str();
  cmd->add_option("--seed", a->sampler.seed, "Random seed")->capture_default_str();
  cmd->add_option("--chat", a->chat, "Chat template: none, auto, vicuna, zephyr, llama2, chatml")->capture_default_str();
  cmd->add_option("--system", a->system, "System message for chat templates");
  cmd->add_option("--kv", a->kv, "KV cache precision: f16 or f32")->capture_default_str()->check(CLI::IsMember({"f16", "f32"}));
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_backend_option(cmd, a->backend);
  cmd->add_option("--bits", a->bits, "Weight width of a quantized model for every pass (0: the highest stored)")->capture_default_str()->check(CLI::Range(0, 8));
  cmd->add_option("--prefill-bits", a->prefill_bits, "Width of the prompt pass (default: the schedule's first width)")->check(CLI::Range(0, 8));
  cmd->add_option("--schedule", a->schedule,
                  "Decode widths: fixed:B, a step function like 4:32,3:96,2, a preset first-half-high:H:L, "
                  "middle-half-high:H:L, last-half-high:H:L, alternate:H:L[:PERIOD], or a schedule file from pmpd calibrate");
  cmd->add_option("--scheduler", a->scheduler, "Dynamic scheduler: confidence:HIGH:LOW:THRESHOLD[:PATIENCE]");
  cmd->add_flag("--no-color", a->no_color, "Do not colour tokens by width");
  cmd->add_flag("--json", a->json, "Print one JSON object: ids, text, timings");
  cmd->add_flag("--logits", a->logits, "With --json: logits of the last prompt position and every step");
  cmd->add_flag("--no-bos", a->no_bos, "Do not add the BOS token");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past EOS");
  return [a]() { return run(*a); };
}

}  // namespace pmpd::cli
