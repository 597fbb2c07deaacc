#include "tokenizer/utf8.h"

namespace pmpd::utf8 {

size_t find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint8_t b = uint8_t(s[i]);
    size_t n = seq_len(b);
    if (b >= 0x80 && (n == 1 || b == 0xc0 || b == 0xc1 || b > 0xf4)) return i;
    if (i + n > s.size()) return i;
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) {
      uint8_t c = uint8_t(s[i + k]);
      if ((c & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += n;
  }
  return std::string_view::npos;
}

uint32_t next(std::string_view s, size_t& i) {
  uint8_t b = uint8_t(s[i]);
  size_t n = seq_len(b);
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3f);
  i += n;
  return cp;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

size_t complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut off.
  size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    uint8_t b = uint8_t(s[n - back]);
    if ((b & 0xc0) == 0x80) continue;  // continuation byte
    if (b >= 0xc0 && seq_len(b) > back) return n - back;
    break;
  }
  return n;
}

}  // namespace pmpd::utf8
