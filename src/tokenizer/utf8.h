// Small UTF-8 helpers shared by the tokenizers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pmpd::utf8 {

// Length of the UTF-8 sequence starting with byte b (1 for invalid lead bytes).
inline size_t seq_len(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xe0) == 0xc0) return 2;
  if ((b & 0xf0) == 0xe0) return 3;
  if ((b & 0xf8) == 0xf0) return 4;
  return 1;
}

// Byte offset of the first invalid sequence, or npos when s is valid UTF-8.
size_t find_invalid(std::string_view s);

// Decodes the code point at s[i] (s must be valid); advances i.
uint32_t next(std::string_view s, size_t& i);

void append(std::string& out, uint32_t cp);

// Longest prefix of s that ends on a complete UTF-8 sequence (for streaming output).
size_t complete_prefix(std::string_view s);

}  // namespace pmpd::utf8
