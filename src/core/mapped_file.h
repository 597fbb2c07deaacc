// A read-only memory-mapped file. Weights are used in place from the mapping, so a
// model costs no load time and shares pages with the OS cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pmpd {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) text file; throws pmpd::Error naming the file if it cannot.
std::string read_text_file(const std::string& path);

// Writes a file atomically: to PATH.tmp, then rename, so readers never see half a file.
void write_file_atomic(const std::string& path, std::string_view content);

// "path|size|mtime": names one version of a file in the keys of resumable jobs.
std::string file_fingerprint(const std::string& path);

}  // namespace pmpd
