// Shared helpers for the tests: fixture paths, temp files, logits comparison.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_file.h"
#include "model/transformer.h"
#include "quant/quantize_model.h"

namespace pmpd::test {

// The checkout the tests read fixtures from; PMPD_SOURCE_DIR overrides the build-time
// path (the GPU machine runs binaries built elsewhere: tools/gpu/run.sh).
inline std::string source_dir() {
  const char* env = std::getenv("PMPD_SOURCE_DIR");
  return env && *env ? env : PMPD_SOURCE_DIR;
}
inline std::string fixture(const std::string& name) { return source_dir() + "/tests/fixtures/" + name; }
inline std::string shared_path(const std::string& rel) { return source_dir() + "/../shared/" + rel; }

// A fresh directory under the system temp dir, removed at exit of the test.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("pmpd_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// pmpd-tiny quantized to widths lo..hi as dir/q.gguf, loaded memory-mapped.
inline std::unique_ptr<Model> quantized_tiny(const TempDir& dir, int lo, int hi) {
  auto src = load_model(source_dir() + "/models/pmpd-tiny");
  quant::QuantizeOptions qo;
  qo.bits_min = lo, qo.bits_max = hi;
  quant::quantize_model(*src, dir.file("q.gguf"), qo);
  return load_model(dir.file("q.gguf"));
}

// max |a - b| / max |b|: the relative error the tests bound.
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return a.size() == b.size() ? num / std::max(den, 1e-30) : INFINITY;
}

// Transformer::queue_step's tickets expire: a fresh cache's chain of 65 queued steps leaves
// the first one 64 steps old, which take_step refuses; the last one it returns.
inline void expect_old_tickets_refused(Transformer& tf, int first, int bits) {
  KVCache cache(tf.config(), 80, true);
  const int64_t old = tf.queue_step(first, -1, cache, bits);
  int64_t last = old;
  for (int i = 0; i < 64; ++i) last = tf.queue_step(-1, last, cache, bits);
  EXPECT_ANY_THROW(tf.take_step(old));
  EXPECT_GE(tf.take_step(last), 0);
}

}  // namespace pmpd::test
