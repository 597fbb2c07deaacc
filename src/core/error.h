// Errors: every failure the user can cause (bad file, bad flag, bad prompt) is a
// pmpd::Error with a one-line message naming the thing and the problem. The CLI turns
// it into "pmpd: error: ..." and a non-zero exit status; nothing else aborts.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace pmpd {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Checks a condition on untrusted input; throws with the formatted message if false.
#define PMPD_CHECK(cond, ...)              \
  do {                                     \
    if (!(cond)) ::pmpd::fail(__VA_ARGS__); \
  } while (0)

}  // namespace pmpd
