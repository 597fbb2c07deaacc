// Request bodies of /v1/completions and /v1/chat/completions, against the project's
// default model (its tokenizer and limits): every body is a request or an API error.
#include "core/json_file.h"
#include "fuzz_common.h"
#include "server/completion.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto model = pmpd::load_model(std::string(PMPD_SOURCE_DIR) + "/models/pmpd-tiny");
  static pmpd::Tokenizer tok(*model->tokenizer);
  static pmpd::server::ServerConfig cfg;
  pmpd::Json body = pmpd::Json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size,
                                      nullptr, false);
  if (body.is_discarded()) return 0;
  for (bool chat : {false, true}) {
    try {
      pmpd::server::parse_request(body, chat, *model, tok, cfg);
    } catch (const pmpd::server::ApiError&) {
    } catch (const pmpd::Error&) {
    }
  }
  return 0;
}
