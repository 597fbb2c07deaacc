#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/bpe_merger.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/utf8.h"

namespace pmpd {

namespace {

const std::string kSpaceMark = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

uint64_t pair_key(int a, int b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

// GPT-2's reversible byte -> printable code point map.
std::vector<uint32_t> gpt2_byte_map() {
  std::vector<uint32_t> m(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m[b] = printable ? uint32_t(b) : uint32_t(256 + extra++);
  }
  return m;
}

int parse_byte_piece(const std::string& p) {  // "<0x0A>" -> 10, else -1
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerData data) : d_(std::move(data)) {
  const int V = int(d_.pieces.size());
  PMPD_CHECK(V > 0, "{}: tokenizer has an empty vocabulary", d_.source);
  for (int id : {d_.bos, d_.eos, d_.unk, d_.pad})
    PMPD_CHECK(id < V, "{}: special token id {} outside the vocabulary of {}", d_.source, id, V);
  PMPD_CHECK(d_.scores.empty() || int(d_.scores.size()) == V, "{}: {} scores for {} tokens", d_.source,
             d_.scores.size(), V);
  PMPD_CHECK(d_.types.empty() || int(d_.types.size()) == V, "{}: {} token types for {} tokens",
             d_.source, d_.types.size(), V);
  piece_to_id_.reserve(size_t(V));
  for (int i = 0; i < V; ++i) piece_to_id_.emplace(d_.pieces[i], i);  // first id wins on duplicates
  std::fill(std::begin(byte_token_), std::end(byte_token_), -1);
  for (int i = 0; i < V; ++i)
    if (int b = parse_byte_piece(d_.pieces[i]); b >= 0 && (d_.types.empty() || d_.types[i] == kByte || d_.kind == TokenizerKind::SentencePiece))
      if (byte_token_[b] < 0) byte_token_[b] = i;
  for (size_t r = 0; r < d_.merges.size(); ++r) {
    auto& [a, b] = d_.merges[r];
    auto ia = piece_to_id_.find(a), ib = piece_to_id_.find(b), im = piece_to_id_.find(a + b);
    if (ia == piece_to_id_.end() || ib == piece_to_id_.end() || im == piece_to_id_.end()) continue;
    merge_rank_.try_emplace(pair_key(ia->second, ib->second), int(r), im->second);
  }
  if (d_.kind == TokenizerKind::ByteLevel) {
    auto m = gpt2_byte_map();
    byte_char_.resize(256);
    for (int b = 0; b < 256; ++b) {
      utf8::append(byte_char_[b], m[b]);
      char_byte_[m[b]] = uint8_t(b);
    }
  }
  // Longest split tokens first so "<|im_start|>" wins over a shorter prefix.
  std::sort(d_.split_tokens.begin(), d_.split_tokens.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  d_.split_tokens.erase(std::remove_if(d_.split_tokens.begin(), d_.split_tokens.end(),
                                       [&](const std::string& s) { return s.empty() || !piece_to_id_.count(s); }),
                        d_.split_tokens.end());
}

bool Tokenizer::is_control(int id) const {
  if (id == d_.bos || id == d_.eos) return true;
  return !d_.types.empty() && id >= 0 && id < int(d_.types.size()) && d_.types[id] == kControl;
}

std::vector<int> Tokenizer::bpe(std::vector<int> symbols) const {
  if (!merge_rank_.empty() || d_.scores.empty()) {
    return bpe_merge(std::move(symbols), [this](int a, int b) -> std::optional<MergeResult> {
      auto it = merge_rank_.find(pair_key(a, b));
      if (it == merge_rank_.end()) return std::nullopt;
      return MergeResult{double(it->second.first), it->second.second};
    });
  }
  return bpe_merge(std::move(symbols), [this](int a, int b) -> std::optional<MergeResult> {
    auto it = piece_to_id_.find(d_.pieces[a] + d_.pieces[b]);
    if (it == piece_to_id_.end()) return std::nullopt;
    if (!d_.types.empty() && (d_.types[it->second] == kUnused || d_.types[it->second] == kControl))
      return std::nullopt;
    return MergeResult{-double(d_.scores[it->second]), it->second};
  });
}

std::vector<int> Tokenizer::encode_segment_spm(std::string_view text, bool first_segment) const {
  std::string norm;
  std::string_view src = text;
  std::string collapsed;
  if (d_.remove_extra_whitespaces) {  // SentencePiece: trim and collapse runs of spaces
    for (char c : text)
      if (c != ' ' || (!collapsed.empty() && collapsed.back() != ' ')) collapsed += c;
    while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
    src = collapsed;
  }
  if (src.empty()) return {};
  if (d_.add_dummy_prefix && (first_segment || d_.dummy_prefix_every_segment)) norm = kSpaceMark;
  for (char c : src) {
    if (c == ' ') norm += kSpaceMark;
    else norm += c;
  }
  // One symbol per character; characters outside the vocabulary become byte tokens.
  std::vector<int> symbols;
  for (size_t i = 0; i < norm.size();) {
    size_t n = std::min(utf8::seq_len(uint8_t(norm[i])), norm.size() - i);
    auto it = piece_to_id_.find(std::string(norm.substr(i, n)));
    if (it != piece_to_id_.end() && (d_.types.empty() || d_.types[it->second] != kControl)) {
      symbols.push_back(it->second);
    } else if (d_.byte_fallback && byte_token_[uint8_t(norm[i])] >= 0) {
      for (size_t k = 0; k < n; ++k) {
        int bt = byte_token_[uint8_t(norm[i + k])];
        PMPD_CHECK(bt >= 0, "{}: no byte-fallback token for byte {:#x}", d_.source, uint8_t(norm[i + k]));
        symbols.push_back(bt);
      }
    } else {
      PMPD_CHECK(d_.unk >= 0, "{}: character not in the vocabulary and no <unk> token", d_.source);
      if (symbols.empty() || symbols.back() != d_.unk) symbols.push_back(d_.unk);  // fuse_unk
    }
    i += n;
  }
  return bpe(std::move(symbols));
}

std::vector<int> Tokenizer::encode_segment_bytelevel(std::string_view text) const {
  std::vector<int> out;
  for (std::string_view word : gpt2_pretokenize(text)) {
    std::vector<int> symbols;
    for (unsigned char c : word) {
      auto it = piece_to_id_.find(byte_char_[c]);
      PMPD_CHECK(it != piece_to_id_.end() || d_.unk >= 0, "{}: byte {:#x} has no token", d_.source, c);
      symbols.push_back(it != piece_to_id_.end() ? it->second : d_.unk);
    }
    auto ids = bpe(std::move(symbols));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_bos) const {
  size_t bad = utf8::find_invalid(text);
  PMPD_CHECK(bad == std::string_view::npos, "text is not valid UTF-8 (bad byte at offset {})", bad);
  std::vector<int> out;
  if (add_bos) {
    PMPD_CHECK(d_.bos >= 0, "{}: the tokenizer has no BOS token", d_.source);
    out.push_back(d_.bos);
  }
  // Split out added tokens (special strings) first, as Hugging Face does.
  size_t pos = 0, seg_start = 0;
  bool first = true;
  auto flush_segment = [&](size_t end) {
    if (end > seg_start) {
      std::string_view seg = text.substr(seg_start, end - seg_start);
      auto ids = d_.kind == TokenizerKind::SentencePiece ? encode_segment_spm(seg, first && seg_start == 0)
                                                         : encode_segment_bytelevel(seg);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    first = false;
  };
  while (pos < text.size()) {
    const std::string* hit = nullptr;
    if (!d_.split_tokens.empty())
      for (auto& s : d_.split_tokens)
        if (text.compare(pos, s.size(), s) == 0) { hit = &s; break; }
    if (!hit) { ++pos; continue; }
    flush_segment(pos);
    out.push_back(piece_to_id_.at(*hit));
    pos += hit->size();
    seg_start = pos;
  }
  flush_segment(text.size());
  return out;
}

std::string Tokenizer::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size()) return {};
  const std::string& p = d_.pieces[id];
  if (d_.kind == TokenizerKind::ByteLevel) {
    if (!d_.types.empty() && (d_.types[id] == kControl || d_.types[id] == kUserDefined)) return p;
    std::string out;
    for (size_t i = 0; i < p.size();) {
      uint32_t cp = utf8::next(p, i);
      auto it = char_byte_.find(cp);
      if (it != char_byte_.end()) out += char(it->second);
      else utf8::append(out, cp);
    }
    return out;
  }
  if (int b = parse_byte_piece(p); b >= 0) return std::string(1, char(b));
  if (is_control(id)) return {};
  std::string out;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpaceMark.size(), kSpaceMark) == 0) { out += ' '; i += kSpaceMark.size(); }
    else out += p[i++];
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  bool strip = d_.kind == TokenizerKind::SentencePiece && d_.add_dummy_prefix;
  for (int id : ids) {
    std::string b = token_bytes(id);
    if (strip && !b.empty()) {
      if (b[0] == ' ') b.erase(0, 1);
      strip = false;
    }
    out += b;
  }
  return out;
}

std::string StreamDecoder::push(int id) {
  pending_ += tok_.token_bytes(id);
  size_t n = utf8::complete_prefix(pending_);
  // A run that can never complete (stray continuation bytes) is flushed as-is later.
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  if (utf8::find_invalid(out) != std::string::npos) {
    std::string fixed;
    for (size_t i = 0; i < out.size();) {
      size_t bad = utf8::find_invalid(std::string_view(out).substr(i));
      if (bad == std::string::npos) { fixed += out.substr(i); break; }
      fixed += out.substr(i, bad);
      fixed += "\xef\xbf\xbd";
      i += bad + 1;
    }
    out = fixed;
  }
  return out;
}

std::string StreamDecoder::flush() {
  std::string rest;
  if (!pending_.empty()) rest = "\xef\xbf\xbd";
  pending_.clear();
  return rest;
}

}  // namespace pmpd
