#include "eval/stop_text.h"

namespace pmpd::eval {

bool StopText::push(int id) {
  if (id != eos_) text_ += dec_.push(id);
  for (auto& s : stop_)
    if (!s.empty() && text_.find(s) != std::string::npos) return false;
  return true;
}

std::string StopText::text() const {
  size_t cut = text_.size();
  for (auto& s : stop_)
    if (!s.empty()) cut = std::min(cut, text_.find(s));
  return text_.substr(0, cut);
}

}  // namespace pmpd::eval
