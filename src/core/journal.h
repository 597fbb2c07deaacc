// An append-only log of finished work units (JSON lines), so a long job that is killed
// or interrupted resumes where it stopped instead of starting over. The first line holds
// a key naming everything that changes the results; a log written under another key is
// discarded. Each later line is {"id": ..., "value": ...}, flushed as soon as the unit
// is done; a torn last line (the process died mid-write) is ignored.
#pragma once
#include <fstream>
#include <map>
#include <string>

#include "core/json_file.h"

namespace pmpd {

class Journal {
 public:
  Journal(std::string path, std::string key);
  // The value recorded for `id` by this or an earlier run, or null.
  const Json* find(const std::string& id) const;
  void append(const std::string& id, Json value);
  size_t resumed() const { return resumed_; }  // units read back from an earlier run
  const std::string& path() const { return path_; }
  // The job finished and its output is written: the log is no longer needed.
  void remove();

 private:
  std::string path_;
  std::map<std::string, Json> done_;
  std::ofstream out_;
  size_t resumed_ = 0;
};

}  // namespace pmpd
