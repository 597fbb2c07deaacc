#include "server/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "model/cuda_model.h"
#include "index_html.h"  // generated from src/server/web/index.html

namespace pmpd::server {

namespace {

// First come, first served: each request takes a ticket and runs when its number is up.
class FairQueue {
 public:
  class Turn {
   public:
    explicit Turn(FairQueue& q) : q_(q) {}
    ~Turn() {
      std::lock_guard lk(q_.m_);
      ++q_.serving_;
      q_.cv_.notify_all();
    }

   private:
    FairQueue& q_;
  };
  std::unique_ptr<Turn> wait() {
    std::unique_lock lk(m_);
    const uint64_t ticket = next_++;
    cv_.wait(lk, [&] { return serving_ == ticket; });
    return std::make_unique<Turn>(*this);
  }
  uint64_t waiting() {
    std::lock_guard lk(m_);
    return next_ - serving_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t next_ = 0, serving_ = 0;
};

struct Metrics {
  std::atomic<long long> requests{0}, errors{0}, prompt_tokens{0}, generated_tokens{0}, disconnects{0};
  std::mutex m;
  double bits_sum = 0, decode_seconds = 0, prefill_seconds = 0;
  void add(const CompletionResult& r) {
    prompt_tokens += r.gen.prompt_tokens;
    generated_tokens += (long long)r.gen.tokens.size();
    std::lock_guard lk(m);
    for (int b : r.gen.token_bits) bits_sum += b;
    decode_seconds += r.gen.decode_seconds;
    prefill_seconds += r.gen.prefill_seconds;
  }
};

long now_seconds() {
  return long(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

constexpr size_t kMaxBody = 1 << 20;  // 1 MiB of JSON is far beyond any context we serve

}  // namespace

struct Server::Impl {
  const Model& model;
  ServerConfig cfg;
  Tokenizer tok;
  Transformer tf;
  httplib::Server http;
  FairQueue queue;
  Metrics metrics;
  std::atomic<uint64_t> next_id{0};

  Impl(const Model& m, ServerConfig c) : model(m), cfg(std::move(c)), tok(*m.tokenizer), tf(m, cfg.backend) { routes(); }

  void send_error(httplib::Response& res, const ApiError& e) {
    ++metrics.errors;
    res.status = e.status;
    res.set_content(e.body().dump(), "application/json");
  }

  void completion(const httplib::Request& req, httplib::Response& res, bool chat) {
    ++metrics.requests;
    CompletionRequest cr;
    try {
      Json body = Json::parse(req.body, nullptr, false);
      if (body.is_discarded()) throw ApiError{400, "the request body is not valid JSON", ""};
      cr = parse_request(body, chat, model, tok, cfg);
    } catch (const ApiError& e) {
      send_error(res, e);
      return;
    }
    const std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id++);
    const long created = now_seconds();
    if (!cr.stream) {
      auto turn = queue.wait();
      CompletionResult r = run_completion(tf, tok, cr);
      metrics.add(r);
      res.set_content(response_body(cr, r, cfg, id, created).dump(-1, ' ', false, Json::error_handler_t::replace),
                      "application/json");
      return;
    }
    // Server-sent events; the generation runs when the response is written, so a client
    // that goes away makes sink.write fail and the generation stop.
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, cr, id, created](size_t, httplib::DataSink& sink) {
      auto send = [&](const Json& j) {
        const std::string line = "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
        return sink.is_writable() && sink.write(line.data(), line.size());
      };
      auto turn = queue.wait();
      bool first = true, gone = false;
      CompletionResult r = run_completion(tf, tok, cr, [&](const Delta& d) {
        if (!send(chunk_body(cr, d, cfg, id, created, first))) return !(gone = true);
        first = false;
        return true;
      });
      metrics.add(r);
      if (gone) {
        ++metrics.disconnects;
        return false;
      }
      send(final_chunk_body(cr, r, cfg, id, created));
      static const char done[] = "data: [DONE]\n\n";
      sink.write(done, sizeof(done) - 1);
      sink.done();
      return true;
    });
  }

  std::string prometheus() {
    std::lock_guard lk(metrics.m);
    const long long gen = metrics.generated_tokens;
    std::string s;
    auto metric = [&](const char* name, const char* type, const char* help, double v) {
      s += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
    };
    metric("pmpd_requests_total", "counter", "Completion requests received.", double(metrics.requests));
    metric("pmpd_request_errors_total", "counter", "Requests answered with an error.", double(metrics.errors));
    metric("pmpd_client_disconnects_total", "counter", "Streams ended early because the client left.",
           double(metrics.disconnects));
    metric("pmpd_prompt_tokens_total", "counter", "Prompt tokens processed.", double(metrics.prompt_tokens));
    metric("pmpd_generated_tokens_total", "counter", "Tokens generated.", double(gen));
    metric("pmpd_decode_seconds_total", "counter", "Time spent decoding.", metrics.decode_seconds);
    metric("pmpd_prefill_seconds_total", "counter", "Time spent on prompts.", metrics.prefill_seconds);
    metric("pmpd_decode_tokens_per_second", "gauge", "Generated tokens per decoding second, over all requests.",
           metrics.decode_seconds > 0 ? double(gen) / metrics.decode_seconds : 0);
    metric("pmpd_average_bits", "gauge", "Mean weight width per generated token, over all requests.",
           gen > 0 ? metrics.bits_sum / double(gen) : 0);
    metric("pmpd_queue_length", "gauge", "Requests waiting or running.", double(queue.waiting()));
    const cuda::DeviceModel* gpu = tf.device_model();
    metric("pmpd_prefill_cache_bytes", "gauge", "GPU memory the prefill cache holds (--prefill-cache; 0 without it).",
           gpu ? double(gpu->prefill_cache_bytes()) : 0.0);
    return s;
  }

  void routes() {
    http.set_payload_max_length(kMaxBody);
    http.new_task_queue = [] { return new httplib::ThreadPool(16); };
    http.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kIndexHtml, "text/html; charset=utf-8"); });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      Json m = {{"id", cfg.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "pmpd"},
                {"pmpd", {{"quantized", model.quantized()},
                          {"bits_min", model.quantized() ? model.quant.bits_min : 16},
                          {"bits_max", model.quantized() ? model.quant.bits_max : 16},
                          {"high_bits", cfg.high_bits}, {"low_bits", cfg.low_bits},
                          {"schedule", cfg.schedule}, {"context", model.config.max_seq_len}}}};
      res.set_content(Json{{"object", "list"}, {"data", Json::array({m})}}.dump(), "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(prometheus(), "text/plain; version=0.0.4");
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) { completion(q, r, false); });
    http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { completion(q, r, true); });
    // Whatever else: an OpenAI-style 404, and errors inside handlers as a 500 body.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const char* what = res.status == 404 ? "no such endpoint" : res.status == 413 ? "the request body is too large"
                                                                                   : "the request failed";
      res.set_content(ApiError{res.status, fmt::format("{}: {} {}", what, req.method, req.path), ""}.body().dump(),
                      "application/json");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      res.status = 500;
      res.set_content(ApiError{500, what, "", "server_error"}.body().dump(), "application/json");
    });
  }
};

Server::Server(const Model& model, ServerConfig cfg) {
  PMPD_CHECK(model.tokenizer, "{}: the server needs a model with a tokenizer", model.path);
  impl_ = std::make_unique<Impl>(model, std::move(cfg));
}
Server::~Server() = default;

int Server::bind(const std::string& host, int port) {
  int p = port == 0 ? impl_->http.bind_to_any_port(host) : (impl_->http.bind_to_port(host, port) ? port : -1);
  PMPD_CHECK(p > 0, "cannot listen on {}:{} (in use, or not an address of this machine)", host, port);
  return p;
}
void Server::listen() { impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }

}  // namespace pmpd::server
