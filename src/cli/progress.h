// Progress with ETA on stderr: on a terminal a one-line bar redrawn in place; into a file or a
// pipe (logs, CI) a plain line at most every 10 s and at the end, so that a long run's log
// holds a few lines rather than one carriage-return redraw per item.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace pmpd::cli {

class Progress {
 public:
  explicit Progress(std::string what)
      : what_(std::move(what)), start_(std::chrono::steady_clock::now()), terminal_(isatty(fileno(stderr)) != 0) {}
  void update(int done, int total, const std::string& item) {
    const auto now = std::chrono::steady_clock::now();
    double el = std::chrono::duration<double>(now - start_).count();
    double eta = done > 0 ? el / done * (total - done) : 0;
    if (!terminal_) {
      if (done != total && printed_ && now - last_ < std::chrono::seconds(10)) return;
      printed_ = true, last_ = now;
      std::fprintf(stderr, "%s: %d/%d  %s  %.0fs elapsed, ETA %.0fs\n", what_.c_str(), done, total, item.c_str(), el, eta);
      std::fflush(stderr);
      return;
    }
    int width = 28, fill = total > 0 ? done * width / total : 0;
    std::fprintf(stderr, "\r%s [%.*s%*s] %d/%d  %-28.28s  %4.0fs elapsed, ETA %4.0fs", what_.c_str(), fill,
                 "############################", width - fill, "", done, total, item.c_str(), el, eta);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string what_;
  std::chrono::steady_clock::time_point start_, last_;
  bool terminal_ = false, printed_ = false;
};

// "2:8" -> {2, 8}; "4" -> {4, 4}. Throws pmpd::Error on anything else.
std::pair<int, int> parse_bit_range(const std::string& s);

}  // namespace pmpd::cli
