#include "tokenizer/sentencepiece_proto.h"

#include <cstring>

#include "core/error.h"

namespace pmpd {

namespace {

class Wire {
 public:
  Wire(std::string_view b, const std::string& what) : b_(b), what_(what) {}
  bool done() const { return pos_ >= b_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      PMPD_CHECK(pos_ < b_.size(), "{}: truncated protobuf", what_);
      uint8_t c = uint8_t(b_[pos_++]);
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    fail("{}: bad protobuf varint", what_);
  }
  std::string_view bytes() {
    uint64_t n = varint();
    PMPD_CHECK(n <= b_.size() - pos_, "{}: truncated protobuf field", what_);
    auto s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  float fixed32() {
    PMPD_CHECK(b_.size() - pos_ >= 4, "{}: truncated protobuf", what_);
    float f;
    std::memcpy(&f, b_.data() + pos_, 4);
    pos_ += 4;
    return f;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: PMPD_CHECK(b_.size() - pos_ >= 8, "{}: truncated protobuf", what_); pos_ += 8; break;
      case 2: bytes(); break;
      case 5: fixed32(); break;
      default: fail("{}: unsupported protobuf wire type {}", what_, wire_type);
    }
  }

 private:
  std::string_view b_;
  const std::string& what_;
  size_t pos_ = 0;
};

}  // namespace

SentencePieceModel parse_sentencepiece_model(std::string_view bytes, const std::string& what) {
  SentencePieceModel m;
  Wire w(bytes, what);
  while (!w.done()) {
    uint64_t key = w.varint();
    int field = int(key >> 3), wt = int(key & 7);
    if (field == 1 && wt == 2) {  // SentencePiece pieces
      Wire p(w.bytes(), what);
      SentencePieceModel::Piece piece;
      while (!p.done()) {
        uint64_t k = p.varint();
        int f = int(k >> 3), t = int(k & 7);
        if (f == 1 && t == 2) piece.piece = std::string(p.bytes());
        else if (f == 2 && t == 5) piece.score = p.fixed32();
        else if (f == 3 && t == 0) piece.type = int(p.varint());
        else p.skip(t);
      }
      m.pieces.push_back(std::move(piece));
    } else if (field == 2 && wt == 2) {  // TrainerSpec
      Wire t(w.bytes(), what);
      while (!t.done()) {
        uint64_t k = t.varint();
        int f = int(k >> 3), ty = int(k & 7);
        if (ty != 0) { t.skip(ty); continue; }
        int64_t v = int64_t(t.varint());
        if (f == 3) m.model_type = int(v);
        else if (f == 35) m.byte_fallback = v != 0;
        else if (f == 40) m.unk_id = int(v);
        else if (f == 41) m.bos_id = int(v);
        else if (f == 42) m.eos_id = int(v);
        else if (f == 43) m.pad_id = int(int32_t(v));
      }
    } else if (field == 3 && wt == 2) {  // NormalizerSpec
      Wire n(w.bytes(), what);
      while (!n.done()) {
        uint64_t k = n.varint();
        int f = int(k >> 3), ty = int(k & 7);
        if (f == 1 && ty == 2) m.normalizer_name = std::string(n.bytes());
        else if (f == 3 && ty == 0) m.add_dummy_prefix = n.varint() != 0;
        else if (f == 4 && ty == 0) m.remove_extra_whitespaces = n.varint() != 0;
        else n.skip(ty);
      }
    } else {
      w.skip(wt);
    }
  }
  PMPD_CHECK(!m.pieces.empty(), "{}: no pieces in SentencePiece model", what);
  return m;
}

}  // namespace pmpd
