#include "tokenizer/pretokenize.h"

#include <unicode/uchar.h>

#include "tokenizer/utf8.h"

namespace pmpd {

namespace {

enum class Cls { Letter, Number, Space, Other };

Cls classify(uint32_t cp) {
  if (cp < 0x80) {  // fast path for ASCII
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return Cls::Letter;
    if (cp >= '0' && cp <= '9') return Cls::Number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d)) return Cls::Space;
    return Cls::Other;
  }
  if (u_hasBinaryProperty(UChar32(cp), UCHAR_WHITE_SPACE)) return Cls::Space;
  switch (u_charType(UChar32(cp))) {
    case U_UPPERCASE_LETTER: case U_LOWERCASE_LETTER: case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER: case U_OTHER_LETTER:
      return Cls::Letter;
    case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER:
      return Cls::Number;
    default:
      return Cls::Other;
  }
}

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view s) {
  // Decode once into code points with their byte offsets.
  std::vector<uint32_t> cps;
  std::vector<size_t> off;
  for (size_t i = 0; i < s.size();) {
    off.push_back(i);
    cps.push_back(utf8::next(s, i));
  }
  off.push_back(s.size());
  const size_t n = cps.size();
  std::vector<Cls> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = classify(cps[i]);

  std::vector<std::string_view> out;
  size_t i = 0;
  auto emit = [&](size_t end) {
    out.push_back(s.substr(off[i], off[end] - off[i]));
    i = end;
  };
  while (i < n) {
    // contractions
    if (cps[i] == '\'' && i + 1 < n) {
      uint32_t a = cps[i + 1], b = i + 2 < n ? cps[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') { emit(i + 2); continue; }
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) { emit(i + 3); continue; }
    }
    // ' ?' followed by a run of one class
    size_t j = i + (cps[i] == ' ' && i + 1 < n ? 1 : 0);
    if (cls[j] != Cls::Space) {
      Cls c = cls[j];
      size_t k = j;
      if (c == Cls::Other) {
        while (k < n && cls[k] == Cls::Other) ++k;
      } else {
        while (k < n && cls[k] == c) ++k;
      }
      emit(k);
      continue;
    }
    // whitespace: \s+(?!\S) then \s+
    size_t k = i;
    while (k < n && cls[k] == Cls::Space) ++k;
    if (k < n && k - i > 1) --k;  // leave the last space to prefix the next word
    emit(k);
  }
  return out;
}

}  // namespace pmpd
