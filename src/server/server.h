// pmpd serve: an OpenAI-compatible HTTP server (cpp-httplib) over one model, with the
// web demo at "/". Generation runs one request at a time in arrival order (the kernels
// already use every core); each request has its own KV cache, so clients never share
// state, and a streaming client that disconnects ends its generation at the next token.
#pragma once
#include <memory>
#include <string>

#include "server/completion.h"

namespace pmpd::server {

class Server {
 public:
  Server(const Model& model, ServerConfig cfg);
  ~Server();
  // Binds (port 0: any free port) and returns the port; throws pmpd::Error on failure.
  int bind(const std::string& host, int port);
  // Serves until stop() (blocking).
  void listen();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pmpd::server
