// Reads SentencePiece's tokenizer.model (a ModelProto protobuf) with a minimal
// hand-written wire-format parser: only the fields a BPE tokenizer needs.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace pmpd {

struct SentencePieceModel {
  struct Piece {
    std::string piece;
    float score = 0;
    int type = 1;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
  };
  std::vector<Piece> pieces;
  int model_type = 1;  // 1 unigram, 2 bpe, 3 word, 4 char
  bool byte_fallback = false;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string normalizer_name;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
};

// Throws pmpd::Error naming `what` on malformed input.
SentencePieceModel parse_sentencepiece_model(std::string_view bytes, const std::string& what);

}  // namespace pmpd
