// Text <-> token ids for the two tokenizer kinds of the paper's models:
//  - SentencePiece-style BPE with byte fallback (Llama, Vicuna, TinyLlama, MobileLLaMA):
//    spaces become U+2581, a dummy-prefix space is prepended, characters missing from
//    the vocabulary fall back to <0xXX> byte tokens;
//  - byte-level BPE (GPT-2 / GPT-NeoX: Phi-1.5, StableLM): text is split by GPT-2's
//    pre-tokenizer pattern and each byte is mapped to a printable character.
// Loaders for tokenizer.json, tokenizer.model, llama2.c tokenizer.bin and GGUF
// metadata all fill the same TokenizerData.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pmpd {

enum class TokenizerKind { SentencePiece, ByteLevel };

// llama.cpp's token types, stored in GGUF as tokenizer.ggml.token_type.
enum TokenType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct TokenizerData {
  TokenizerKind kind = TokenizerKind::SentencePiece;
  std::vector<std::string> pieces;  // as stored: "▁the", "<0x0A>", or GPT-2 byte chars "Ġthe"
  std::vector<float> scores;        // SentencePiece scores (merge by score when no merges)
  std::vector<std::pair<std::string, std::string>> merges;  // merge list in rank order
  std::vector<int> types;           // TokenType per id (empty: all normal)
  std::vector<std::string> split_tokens;  // added tokens matched verbatim in text
  int bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false;
  bool add_dummy_prefix = true;         // SentencePiece: prepend "▁"
  bool dummy_prefix_every_segment = true;  // HF Prepend normalizer (vs Metaspace "first")
  bool byte_fallback = true;
  bool remove_extra_whitespaces = false;
  std::string chat_template;  // Jinja source from tokenizer_config.json / GGUF, if any
  std::string source;         // file it came from, for messages
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerData data);

  // Encodes UTF-8 text (throws pmpd::Error on invalid UTF-8), adding BOS if asked.
  std::vector<int> encode(std::string_view text, bool add_bos) const;
  // The bytes a token stands for (may be part of a UTF-8 character).
  std::string token_bytes(int id) const;
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const { return int(d_.pieces.size()); }
  int bos() const { return d_.bos; }
  int eos() const { return d_.eos; }
  bool add_bos_default() const { return d_.add_bos; }
  TokenizerKind kind() const { return d_.kind; }
  const TokenizerData& data() const { return d_; }
  bool is_control(int id) const;

 private:
  std::vector<int> encode_segment_spm(std::string_view text, bool first_segment) const;
  std::vector<int> encode_segment_bytelevel(std::string_view text) const;
  std::vector<int> bpe(std::vector<int> symbols) const;

  TokenizerData d_;
  std::unordered_map<std::string, int> piece_to_id_;
  std::unordered_map<uint64_t, std::pair<int, int>> merge_rank_;  // (left,right) -> (rank, merged)
  int byte_token_[256];  // SentencePiece byte-fallback ids, -1 if missing
  std::vector<std::string> byte_char_;  // byte-level: byte -> UTF-8 of its mapped char
  std::unordered_map<uint32_t, uint8_t> char_byte_;  // byte-level: mapped char -> byte
};

// Emits text as tokens arrive, holding back bytes of an incomplete UTF-8 character.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int id);
  std::string flush();  // whatever is left (invalid bytes replaced by U+FFFD)

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

// Loaders (tokenizer_loaders.cpp).
TokenizerData load_tokenizer_json(const std::string& path);
TokenizerData load_sentencepiece_model(const std::string& path);
TokenizerData load_llama2c_tokenizer(const std::string& path, int vocab_size);
// Finds tokenizer.json or tokenizer.model in a Hugging Face directory, applying
// tokenizer_config.json and generation_config.json (BOS/EOS, add_bos, chat template).
TokenizerData load_hf_tokenizer(const std::string& dir);

}  // namespace pmpd
