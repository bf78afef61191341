// SentencePiece (tokenizer.model: LLaMA-2, Mistral, TinyLlama, Gemma) reimplemented from the
// ModelProto protobuf, which is parsed by hand (varints and length-delimited fields) because
// libsentencepiece's protobuf crashes libtorch. BPE merges the adjacent pair whose merged
// piece scores highest; unigram takes the Viterbi path over piece scores; unknown text falls
// back to <0xXX> byte pieces when the model has them. Only the identity normalizer is
// implemented (what LLaMA-style models ship); a model with a precompiled charsmap is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizers/tokenizer.h"

namespace kmoe {

enum class SentencePieceType { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct SentencePiece {
  std::string piece;
  float score = 0.0f;
  SentencePieceType type = SentencePieceType::normal;
};

// The fields of ModelProto that encoding and decoding read, with proto2's defaults.
struct SentencePieceModel {
  std::vector<SentencePiece> pieces;
  int32_t model_type = 1;  // 1 unigram, 2 BPE
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_surface = " \xE2\x81\x87 ";
  std::string normalizer_name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

// Parses a serialized ModelProto; `source` names the file in errors.
SentencePieceModel sentencepiece_model_parse(std::string_view bytes, const std::string& source);

class SentencePieceTokenizer : public Tokenizer {
 public:
  // add_bos / add_eos: what encode(add_special = true) adds (LLaMA: BOS only).
  explicit SentencePieceTokenizer(const std::string& path, bool add_bos = true, bool add_eos = false);
  SentencePieceTokenizer(SentencePieceModel model, const std::string& source, bool add_bos = true,
                         bool add_eos = false);

  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(model_.pieces.size()); }
  int32_t token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;

  // The normalized text the model segments ("▁Hello▁world").
  std::string normalize(std::string_view text) const;

 private:
  void init();
  size_t user_defined_match(std::string_view text, size_t pos) const;  // length of the longest one at pos, or 0
  std::vector<std::pair<std::string, int32_t>> bpe_segment(const std::string& normalized) const;
  std::vector<std::pair<std::string, int32_t>> unigram_segment(const std::string& normalized) const;

  SentencePieceModel model_;
  std::string source_;
  bool add_bos_, add_eos_;
  std::unordered_map<std::string, int32_t> pieces_;    // normal, user-defined and unused pieces
  std::unordered_map<std::string, int32_t> reserved_;  // control, unknown and byte pieces
  std::vector<std::string> user_defined_;
  size_t max_piece_bytes_ = 0;
  float min_score_ = 0.0f, max_score_ = 0.0f;  // over normal pieces (unigram's unknown penalty)
  int32_t byte_ids_[256];
};

}  // namespace kmoe
