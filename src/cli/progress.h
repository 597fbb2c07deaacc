// A one-line progress bar with ETA on stderr, redrawn in place.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

namespace pmpd::cli {

class Progress {
 public:
  explicit Progress(std::string what) : what_(std::move(what)), start_(std::chrono::steady_clock::now()) {}
  void update(int done, int total, const std::string& item) {
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double eta = done > 0 ? el / done * (total - done) : 0;
    int width = 28, fill = total > 0 ? done * width / total : 0;
    std::fprintf(stderr, "\r%s [%.*s%*s] %d/%d  %-28.28s  %4.0fs elapsed, ETA %4.0fs", what_.c_str(), fill,
                 "############################", width - fill, "", done, total, item.c_str(), el, eta);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string what_;
  std::chrono::steady_clock::time_point start_;
};

// "2:8" -> {2, 8}; "4" -> {4, 4}. Throws pmpd::Error on anything else.
std::pair<int, int> parse_bit_range(const std::string& s);

}  // namespace pmpd::cli
