// WordPiece (BERT, MiniLM, BGE): BertNormalizer (clean text, space around CJK, strip accents,
// lowercase), BertPreTokenizer (whitespace and punctuation split), greedy longest-match
// WordPiece with "##" continuations, [CLS] ... [SEP]. The Unicode behaviour comes from
// tables probed from HF tokenizers itself (wordpiece_unicode_gen.py), not from ICU, so that
// old-Unicode quirks (e.g. newer emoji dropped as unassigned by clean_text) match HF exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizers/tokenizer.h"

namespace kmoe {

struct WordpieceOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // HF's null means "same as lowercase"
  bool lowercase = true;
  std::string unk_token = "[UNK]", cls_token = "[CLS]", sep_token = "[SEP]", pad_token = "[PAD]";
  std::string continuing_subword_prefix = "##";
  int64_t max_input_chars_per_word = 100;  // longer words become [UNK]
};

class WordpieceTokenizer : public Tokenizer {
 public:
  // HF tokenizer.json with model.type "WordPiece". Throws naming the file and field for a
  // normalizer / pre-tokenizer / post-processor it does not implement.
  static std::unique_ptr<WordpieceTokenizer> from_json_file(const std::string& path);
  // vocab.txt (one token a line, id = line number) plus the options (from tokenizer_config.json).
  static std::unique_ptr<WordpieceTokenizer> from_vocab_file(const std::string& path, const WordpieceOptions& options);
  // A folder: tokenizer.json if present, else vocab.txt + tokenizer_config.json (do_lower_case,
  // strip_accents, tokenize_chinese_chars). Throws naming the folder when neither is there.
  static std::unique_ptr<WordpieceTokenizer> from_folder(const std::string& folder);

  WordpieceTokenizer(std::vector<std::string> vocab, const WordpieceOptions& options, const std::string& source);

  // add_special: [CLS] ids [SEP].
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  int32_t token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;

  // The normalizer's output and the pre-tokenizer's words, for tests and debugging.
  std::string normalize(std::string_view text) const;
  std::vector<std::string> pre_tokenize(std::string_view normalized) const;

  int32_t cls_id = -1, sep_id = -1;
  const WordpieceOptions& options() const { return options_; }

 private:
  void word_encode(const std::string& word, std::vector<int32_t>& ids) const;

  std::string source_;
  WordpieceOptions options_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::pair<std::string, int32_t>> added_;  // matched in the raw text, longest first
  std::vector<uint8_t> special_;                        // per id
};

}  // namespace kmoe
