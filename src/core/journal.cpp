#include "core/journal.h"

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"

namespace pmpd {

Journal::Journal(std::string path, std::string key) : path_(std::move(path)) {
  bool keep = false;
  {
    std::ifstream in(path_);
    std::string line;
    if (in && std::getline(in, line)) {
      Json head = Json::parse(line, nullptr, false);
      keep = head.is_object() && head.contains("key") && head["key"] == key;
      for (; keep && std::getline(in, line);) {
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains("value"))
          continue;  // torn by an interruption
        done_[j["id"].get<std::string>()] = std::move(j["value"]);
      }
    }
  }
  resumed_ = done_.size();
  // Rewrite the log with what is kept: a torn line must not sit before new records.
  std::string text = Json({{"key", key}}).dump() + "\n";
  for (auto& [id, v] : done_) text += Json({{"id", id}, {"value", v}}).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  write_file_atomic(path_, text);
  out_.open(path_, std::ios::binary | std::ios::app);
  PMPD_CHECK(out_, "{}: cannot write", path_);
}

const Json* Journal::find(const std::string& id) const {
  auto it = done_.find(id);
  return it == done_.end() ? nullptr : &it->second;
}

void Journal::append(const std::string& id, Json value) {
  out_ << Json({{"id", id}, {"value", value}}).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n" << std::flush;
  PMPD_CHECK(out_, "{}: cannot write", path_);
  done_[id] = std::move(value);
}

void Journal::remove() {
  out_.close();
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

}  // namespace pmpd
