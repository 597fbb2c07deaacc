// OpenAI-style completion requests, independent of HTTP: parsing and validation (every
// problem an ApiError with a 4xx status and the offending parameter), the generation with
// the request's precision mode, and the response and stream-chunk bodies, with PMPD's
// extra fields (per-token widths, average bits, timings).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "decode/generator.h"
#include "model/model_loader.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pmpd::server {

struct ApiError {
  int status = 400;
  std::string message, param, type = "invalid_request_error";
  Json body() const;
};

struct ServerConfig {
  std::string model_id = "pmpd";   // the id /v1/models reports and requests may name
  int high_bits = 0, low_bits = 0;  // widths of modes "high" and "low" (quantized models)
  std::string schedule;            // mode "pmpd": a schedule spec or a calibrated schedule file
  std::string learned;             // mode "pmpd" with scheduler "learned": "learned:FILE.gguf" (empty: none)
  int default_max_tokens = 128;
  ChatTemplate chat = ChatTemplate::None;
  Backend backend = Backend::CPU;  // where generation runs
};

struct CompletionRequest {
  bool chat = false, stream = false;
  std::vector<int> prompt;
  int max_tokens = 0;
  SamplerParams sampler;
  std::vector<std::string> stop;
  std::string mode = "pmpd";  // pmpd | high | low
  std::string schedule;       // the schedule actually used ("" for a 16-bit model)
};

// Throws ApiError on anything invalid: bad JSON types, unknown fields, empty or oversized
// prompts, max_tokens outside 1..context, unknown modes or schedulers.
CompletionRequest parse_request(const Json& body, bool chat, const Model& model, const Tokenizer& tok,
                                const ServerConfig& cfg);

// One generated piece of text and the width of the pass that produced it.
struct Delta {
  std::string text;
  int bits = 0;
};

struct CompletionResult {
  std::string text;
  std::string finish_reason;  // stop | length
  GenerateResult gen;
};

// Generates; on_delta (if given) sees text as it becomes final (held back while it could
// still be the start of a stop string) and returns false to stop (client gone).
CompletionResult run_completion(Transformer& tf, const Tokenizer& tok, const CompletionRequest& req,
                                const std::function<bool(const Delta&)>& on_delta = {});

Json response_body(const CompletionRequest& req, const CompletionResult& r, const ServerConfig& cfg,
                   const std::string& id, long created);
Json chunk_body(const CompletionRequest& req, const Delta& d, const ServerConfig& cfg, const std::string& id,
                long created, bool first);
Json final_chunk_body(const CompletionRequest& req, const CompletionResult& r, const ServerConfig& cfg,
                      const std::string& id, long created);

}  // namespace pmpd::server
