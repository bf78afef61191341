// Byte-level BPE (GPT-2, LLaMA-3, SmolLM, Qwen2): added tokens are cut out of the raw text,
// the rest is split by the pre-tokenizer regexes (PCRE2 in UTF+UCP mode), and each piece is
// merged by rank. The vocabulary is stored as raw bytes, not GPT-2's printable remapping, so
// the merge loop and decode work on bytes and decode needs no reverse table. Loaded from
// HF's tokenizer.json or from GGUF's tokenizer.ggml.* arrays (BpeVocab).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizers/tokenizer.h"

namespace kmoe {

// GGUF's view of a BPE tokenizer (llama.cpp's key names, without the tokenizer.ggml. prefix).
struct BpeVocab {
  std::vector<std::string> tokens;   // byte-level strings ("Ġthe"), index = id
  std::vector<std::string> merges;   // "Ġ t", rank = index
  std::vector<int32_t> token_types;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
  std::string pre = "default";       // tokenizer.ggml.pre: gpt2, llama-bpe, smollm, qwen2, ...
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false;
};

// How a Split pre-tokenizer treats what its regex matched (HF's SplitDelimiterBehavior).
enum class BpeSplitBehavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };

struct BpeAddedToken {
  int32_t id = -1;
  std::string content;
  bool special = true;                  // skipped by decode(skip_special)
  bool single_word = false;             // only when not inside a word
  bool lstrip = false, rstrip = false;  // also swallow the whitespace on that side
};

class BpeTokenizer : public Tokenizer {
 public:
  // HF tokenizer.json (model.type "BPE", ByteLevel pre-tokenizer somewhere). Throws naming
  // the file and the offending field for anything it does not implement.
  static std::unique_ptr<BpeTokenizer> from_json_file(const std::string& path);
  static std::unique_ptr<BpeTokenizer> from_json_text(const std::string& json_text, const std::string& source);
  // GGUF arrays; `source` names the file in errors.
  BpeTokenizer(const BpeVocab& vocab, const std::string& source);
  ~BpeTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  int32_t token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;

  // The pre-tokenizer's pieces of `text` (raw bytes), for tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  struct PreStep;  // one pre-tokenizer stage (regex split and/or ByteLevel prefix space)

 private:
  BpeTokenizer();
  void vocab_finish(const std::vector<std::pair<std::string, std::string>>& merges);
  void word_encode(const std::string& word, std::vector<int32_t>& ids) const;

  std::string source_;
  std::vector<std::string> tokens_;  // vocabulary strings as written in the file
  std::vector<std::string> bytes_;   // the same tokens as raw bytes
  std::unordered_map<std::string, int32_t> token_ids_;
  std::unordered_map<std::string, int32_t> bytes_ids_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left<<32|right) -> (rank, merged id)
  std::array<int32_t, 256> byte_ids_{};
  bool ignore_merges_ = false;
  std::vector<BpeAddedToken> added_;
  std::vector<uint8_t> special_;  // per id: 1 for a special added token
  std::vector<std::shared_ptr<PreStep>> steps_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // added by encode(add_special)

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // piece -> ids
};

// llama.cpp's pre-tokenizer regexes for a tokenizer.ggml.pre name, in the order applied.
// Throws for a name it does not know.
std::vector<std::string> bpe_pre_regexes(const std::string& pre_name);

}  // namespace kmoe
