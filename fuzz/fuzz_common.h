// Shared by the libFuzzer targets: the input lands in a file (every parser takes a path,
// as users give them), the parser runs, and pmpd::Error is the only acceptable failure.
// A crash, a sanitizer report, a hang or an uncaught exception is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace pmpd::fuzz {

// A per-process scratch file in /dev/shm (memory), or the temp dir.
inline std::string scratch(const char* name) {
  std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  return (dir / ("pmpd_fuzz_" + std::to_string(::getpid()) + "_" + name)).string();
}

inline void write(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const pmpd::Error&) {
  }
}

}  // namespace pmpd::fuzz
