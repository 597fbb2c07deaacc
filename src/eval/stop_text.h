// The text of a task generation as it streams: decoded token by token (valid UTF-8),
// EOS left out, and cut before the first of the task's stop strings. Copyable, so a
// branched generation can carry its text along.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace pmpd::eval {

class StopText {
 public:
  StopText(const Tokenizer& tok, std::vector<std::string> stop) : dec_(tok), eos_(tok.eos()), stop_(std::move(stop)) {}
  // Appends a generated id; returns false once a stop string has appeared (generation should end).
  bool push(int id);
  // The text so far, cut before the first stop string.
  std::string text() const;

 private:
  StreamDecoder dec_;
  int eos_;
  std::vector<std::string> stop_;
  std::string text_;
};

}  // namespace pmpd::eval
