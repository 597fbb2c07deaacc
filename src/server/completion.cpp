#include "server/completion.h"

#include <fmt/format.h>

#include <set>

#include "core/error.h"
#include "eval/stop_text.h"
#include "sched/schedule_file.h"
#include "sched/scheduler.h"

namespace pmpd::server {

Json ApiError::body() const {
  return {{"error", {{"message", message}, {"type", type}, {"param", param.empty() ? Json(nullptr) : Json(param)},
                     {"code", param == "model" ? Json("model_not_found") : Json(nullptr)}}}};
}

namespace {

[[noreturn]] void reject(const std::string& param, const std::string& message, int status = 400) {
  throw ApiError{status, message, param};
}

const Json* field(const Json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const Json& body, const char* key, double fallback, double lo, double hi, bool lo_open = false) {
  const Json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number()) reject(key, fmt::format("'{}' must be a number", key));
  double x = v->get<double>();
  if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
    reject(key, fmt::format("'{}' is {}; it must be in {}{}, {}]", key, x, lo_open ? "(" : "[", lo, hi));
  return x;
}

long long integer(const Json& body, const char* key, long long fallback, long long lo, long long hi) {
  const Json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) reject(key, fmt::format("'{}' must be an integer", key));
  long long x = v->get<long long>();
  if (x < lo || x > hi) reject(key, fmt::format("'{}' is {}; it must be in [{}, {}]", key, x, lo, hi));
  return x;
}

std::string string_field(const Json& v, const std::string& param) {
  if (!v.is_string()) reject(param, fmt::format("'{}' must be a string", param));
  return v.get<std::string>();
}

}  // namespace

CompletionRequest parse_request(const Json& body, bool chat, const Model& model, const Tokenizer& tok,
                                const ServerConfig& cfg) {
  if (!body.is_object()) reject("", "the request body must be a JSON object");
  static const std::set<std::string> common = {
      "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stream", "stream_options", "n",
      "user", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "logprobs", "pmpd"};
  static const std::set<std::string> completion_only = {"prompt", "echo", "suffix", "best_of"};
  static const std::set<std::string> chat_only = {"messages", "max_completion_tokens", "top_logprobs"};
  for (auto& [k, v] : body.items())
    if (!common.count(k) && !(chat ? chat_only : completion_only).count(k))
      reject(k, fmt::format("unknown field '{}'", k));

  CompletionRequest r;
  r.chat = chat;
  if (const Json* m = field(body, "model"); m && string_field(*m, "model") != cfg.model_id)
    reject("model", fmt::format("the model '{}' does not exist; this server serves '{}'", m->get<std::string>(), cfg.model_id),
           404);
  // Features pmpd does not offer are accepted only at their neutral values.
  if (integer(body, "n", 1, 1, 1) != 1 || integer(body, "best_of", 1, 1, 1) != 1) reject("n", "only n = 1 is supported");
  number(body, "presence_penalty", 0, 0, 0);
  number(body, "frequency_penalty", 0, 0, 0);
  if (const Json* e = field(body, "echo"); e && (!e->is_boolean() || e->get<bool>())) reject("echo", "echo is not supported");
  if (const Json* l = field(body, "logprobs"); l && !(l->is_boolean() && !l->get<bool>()) && !(l->is_number_integer() && l->get<int>() == 0))
    reject("logprobs", "logprobs are not supported");
  if (const Json* l = field(body, "top_logprobs"); l && !(l->is_number_integer() && l->get<int>() == 0))
    reject("top_logprobs", "logprobs are not supported");
  if (const Json* b = field(body, "logit_bias"); b && !(b->is_object() && b->empty())) reject("logit_bias", "logit_bias is not supported");
  if (const Json* s = field(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty())) reject("suffix", "suffix is not supported");
  if (const Json* u = field(body, "user")) string_field(*u, "user");
  if (const Json* so = field(body, "stream_options"); so && !so->is_object()) reject("stream_options", "'stream_options' must be an object");

  // The prompt.
  const bool bos = tok.add_bos_default();
  try {
    if (chat) {
      const Json* msgs = field(body, "messages");
      if (!msgs || !msgs->is_array() || msgs->empty()) reject("messages", "'messages' must be a non-empty array");
      std::vector<ChatMessage> conv;
      for (size_t i = 0; i < msgs->size(); ++i) {
        const Json& m = (*msgs)[i];
        const std::string p = fmt::format("messages[{}]", i);
        if (!m.is_object() || !m.contains("role") || !m.contains("content"))
          reject(p, fmt::format("'{}' must be an object with 'role' and 'content'", p));
        std::string role = string_field(m["role"], p + ".role"), content = string_field(m["content"], p + ".content");
        if (role != "system" && role != "user" && role != "assistant")
          reject(p + ".role", fmt::format("unknown role '{}' (system, user, assistant)", role));
        conv.push_back({role, content});
      }
      std::string text;
      if (cfg.chat != ChatTemplate::None) {
        text = render_chat(cfg.chat, conv);
      } else {  // no template: the turns as plain lines, the model continues the last
        for (auto& m : conv) text += m.content + "\n";
      }
      r.prompt = tok.encode(text, bos);
    } else {
      const Json* p = field(body, "prompt");
      if (!p) reject("prompt", "'prompt' is required");
      if (p->is_string()) {
        r.prompt = tok.encode(p->get<std::string>(), bos);
      } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
        for (auto& id : *p) {
          if (!id.is_number_integer() || id.get<long long>() < 0 || id.get<long long>() >= model.config.vocab_size)
            reject("prompt", fmt::format("token ids must be integers in [0, {})", model.config.vocab_size));
          r.prompt.push_back(id.get<int>());
        }
      } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        r.prompt = tok.encode((*p)[0].get<std::string>(), bos);
      } else {
        reject("prompt", "'prompt' must be a string, a one-string array or an array of token ids");
      }
    }
  } catch (const Error& e) {  // e.g. invalid UTF-8
    reject(chat ? "messages" : "prompt", e.what());
  }
  if (r.prompt.empty()) reject(chat ? "messages" : "prompt", "the prompt is empty");
  const int ctx = model.config.max_seq_len, room = ctx - int(r.prompt.size());
  if (room < 1)
    reject(chat ? "messages" : "prompt",
           fmt::format("the prompt has {} tokens; the model's context is {}", r.prompt.size(), ctx));
  const char* mt = chat && field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.max_tokens = int(integer(body, mt, std::min(cfg.default_max_tokens, room), 1, room));

  r.sampler.temperature = float(number(body, "temperature", 1.0, 0, 2));
  r.sampler.top_p = float(number(body, "top_p", 1.0, 0, 1, true));
  r.sampler.top_k = int(integer(body, "top_k", 0, 0, 1 << 30));
  r.sampler.min_p = float(number(body, "min_p", 0, 0, 0.999999));
  r.sampler.repeat_penalty = float(number(body, "repetition_penalty", 1.0, 0, 10, true));
  r.sampler.seed = uint64_t(integer(body, "seed", 0, 0, (1LL << 53)));
  if (const Json* s = field(body, "stream")) {
    if (!s->is_boolean()) reject("stream", "'stream' must be true or false");
    r.stream = s->get<bool>();
  }
  if (const Json* s = field(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array() && s->size() <= 4) {
      for (auto& x : *s) r.stop.push_back(string_field(x, "stop"));
    } else {
      reject("stop", "'stop' must be a string or an array of up to 4 strings");
    }
  }

  // Precision: the mode picks the schedule; a 16-bit model has only its own.
  std::string request_schedule;
  bool use_learned = false;
  if (const Json* p = field(body, "pmpd")) {
    if (!p->is_object()) reject("pmpd", "'pmpd' must be an object");
    for (auto& [k, v] : p->items())
      if (k != "mode" && k != "scheduler" && k != "schedule") reject("pmpd." + k, fmt::format("unknown field 'pmpd.{}'", k));
    if (p->contains("mode")) r.mode = string_field((*p)["mode"], "pmpd.mode");
    if (r.mode != "pmpd" && r.mode != "high" && r.mode != "low")
      reject("pmpd.mode", fmt::format("unknown mode '{}' (pmpd, high, low)", r.mode));
    if (p->contains("scheduler")) {
      std::string s = string_field((*p)["scheduler"], "pmpd.scheduler");
      if (s != "static" && s != "learned") reject("pmpd.scheduler", fmt::format("unknown scheduler '{}' (static, learned)", s));
      if (s == "learned" && cfg.learned.empty())
        reject("pmpd.scheduler", "this server has no learned scheduler (start it with --scheduler learned:FILE.gguf)");
      use_learned = s == "learned";
    }
    if (p->contains("schedule")) {
      request_schedule = string_field((*p)["schedule"], "pmpd.schedule");
      if (is_schedule_file(request_schedule)) reject("pmpd.schedule", "schedule files are chosen when the server starts");
    }
  }
  if (model.quantized()) {
    if (r.mode == "high") r.schedule = fmt::format("fixed:{}", cfg.high_bits);
    else if (r.mode == "low") r.schedule = fmt::format("fixed:{}", cfg.low_bits);
    else if (use_learned) r.schedule = cfg.learned;
    else r.schedule = request_schedule.empty() ? cfg.schedule : request_schedule;
    std::unique_ptr<Scheduler> s;
    try {
      s = make_scheduler(r.schedule, r.max_tokens, 0, model.quant.bits_max);
    } catch (const Error& e) {
      reject("pmpd.schedule", e.what());
    }
    for (int b : s->widths())
      if (b < model.quant.bits_min || b > model.quant.bits_max)
        reject("pmpd.schedule", fmt::format("schedule \"{}\" uses {} bits; the model holds {} to {}", r.schedule, b,
                                            model.quant.bits_min, model.quant.bits_max));
  }
  return r;
}

CompletionResult run_completion(Transformer& tf, const Tokenizer& tok, const CompletionRequest& req,
                                const std::function<bool(const Delta&)>& on_delta) {
  const Model& m = tf.model();
  GenerateOptions opt;
  opt.max_new_tokens = req.max_tokens;
  opt.sampler = req.sampler;
  opt.eos = tok.eos();
  std::unique_ptr<Scheduler> sched;
  if (m.quantized()) {
    sched = make_scheduler(req.schedule, req.max_tokens, 0, m.quant.bits_max);
    opt.scheduler = sched.get();
  }
  eval::StopText text(tok, req.stop);
  size_t holdback = 0, emitted = 0;
  for (auto& s : req.stop) holdback = std::max(holdback, s.empty() ? 0 : s.size() - 1);
  CompletionResult res;
  bool stop_string = false;
  auto emit = [&](bool final, int bits) {
    const std::string t = text.text();
    size_t upto = final ? t.size() : t.size() > holdback ? t.size() - holdback : 0;
    while (upto > emitted && upto < t.size() && (uint8_t(t[upto]) & 0xC0) == 0x80) --upto;  // whole characters only
    Delta d{upto > emitted ? t.substr(emitted, upto - emitted) : std::string(), bits};
    emitted = std::max(emitted, upto);
    return !on_delta || on_delta(d);
  };
  generate(tf, req.prompt, opt, [&](int id) {
    const bool go_on = text.push(id);
    if (!go_on) stop_string = true;
    if (!emit(!go_on, res.gen.token_bits.back())) return false;  // the client is gone
    return go_on;
  }, &res.gen);
  if (!stop_string && holdback > 0 && on_delta) emit(true, res.gen.token_bits.empty() ? 0 : res.gen.token_bits.back());
  res.text = text.text();
  res.finish_reason = res.gen.hit_eos || stop_string ? "stop" : "length";
  return res;
}

namespace {

Json pmpd_fields(const CompletionRequest& req, const CompletionResult& r) {
  const double decode_steps = std::max<double>(double(r.gen.tokens.size()) - 1, 0);
  Json j = {{"mode", req.mode},
            {"schedule", req.schedule.empty() ? Json(nullptr) : Json(req.schedule)},
            {"prefill_bits", r.gen.prefill_bits},
            {"average_bits", r.gen.average_bits()},
            {"token_bits", r.gen.token_bits},
            {"timings",
             {{"prefill_ms", 1e3 * r.gen.prefill_seconds},
              {"decode_ms", 1e3 * r.gen.decode_seconds},
              {"prefill_tokens_per_second", r.gen.prefill_seconds > 0 ? r.gen.prompt_tokens / r.gen.prefill_seconds : 0},
              {"decode_tokens_per_second", r.gen.decode_seconds > 0 ? decode_steps / r.gen.decode_seconds : 0}}}};
  return j;
}

Json usage(const CompletionResult& r) {
  const int n = int(r.gen.tokens.size());
  return {{"prompt_tokens", r.gen.prompt_tokens}, {"completion_tokens", n}, {"total_tokens", r.gen.prompt_tokens + n}};
}

// The fields every response and chunk share.
Json envelope(const CompletionRequest& req, const ServerConfig& cfg, const std::string& id, long created, Json choice,
              bool chunk) {
  const char* object = !req.chat ? "text_completion" : chunk ? "chat.completion.chunk" : "chat.completion";
  return {{"id", id}, {"object", object}, {"created", created}, {"model", cfg.model_id}, {"choices", Json::array({choice})}};
}

}  // namespace

Json response_body(const CompletionRequest& req, const CompletionResult& r, const ServerConfig& cfg,
                   const std::string& id, long created) {
  Json choice = {{"index", 0}, {"finish_reason", r.finish_reason}, {"logprobs", nullptr}};
  if (req.chat) choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  else choice["text"] = r.text;
  Json j = envelope(req, cfg, id, created, choice, false);
  j["usage"] = usage(r);
  j["pmpd"] = pmpd_fields(req, r);
  return j;
}

Json chunk_body(const CompletionRequest& req, const Delta& d, const ServerConfig& cfg, const std::string& id,
                long created, bool first) {
  Json choice = {{"index", 0}, {"finish_reason", nullptr}, {"logprobs", nullptr}};
  if (req.chat) {
    choice["delta"] = {{"content", d.text}};
    if (first) choice["delta"]["role"] = "assistant";
  } else {
    choice["text"] = d.text;
  }
  Json j = envelope(req, cfg, id, created, choice, true);
  j["pmpd"] = {{"bits", d.bits}};
  return j;
}

Json final_chunk_body(const CompletionRequest& req, const CompletionResult& r, const ServerConfig& cfg,
                      const std::string& id, long created) {
  Json choice = {{"index", 0}, {"finish_reason", r.finish_reason}, {"logprobs", nullptr}};
  if (req.chat) choice["delta"] = Json::object();
  else choice["text"] = "";
  Json j = envelope(req, cfg, id, created, choice, true);
  j["usage"] = usage(r);
  j["pmpd"] = pmpd_fields(req, r);
  return j;
}

}  // namespace pmpd::server
