// The one interface the rest of kmoe tokenizes through: text -> ids -> text, with the
// special ids a model needs. Two implementations: byte-level BPE (HF tokenizer.json or GGUF
// vocab arrays) and SentencePiece (tokenizer.model, parsed by hand because libsentencepiece's
// protobuf crashes libtorch). decode returns raw bytes: a prefix of an encode may end inside
// a UTF-8 character, and the caller (streaming) decides how to show that.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kmoe {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // add_special: the model's post-processing (BOS etc.). Special tokens written in `text`
  // (e.g. "<|im_start|>") are always matched as tokens, as HF does by default.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true) const = 0;
  // skip_special: drop control tokens (BOS/EOS/<|im_end|>...) instead of writing their text.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t token_to_id(std::string_view token) const = 0;  // -1 when absent
  virtual std::string id_to_token(int32_t id) const = 0;          // the vocabulary string; throws out of range

  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
};

// `path` is a tokenizer.json, a tokenizer.model, or a folder holding one of them (tokenizer.json
// preferred). Throws naming the file when neither is there or the file is malformed.
std::unique_ptr<Tokenizer> tokenizer_load(const std::string& path);

// Length in bytes of the UTF-8 sequence starting at text[pos] (1 for an invalid lead or a
// truncated sequence, so that scanning always advances).
size_t utf8_char_length(std::string_view text, size_t pos);
// `text` with every byte sequence that is not valid UTF-8 (stray continuation bytes,
// truncated, overlong or surrogate sequences, code points past U+10FFFF) replaced by
// U+FFFD, one per maximal subpart as Python's errors="replace" and HF tokenizers' decode do,
// so that regexes and h5py see valid UTF-8 and replies read as transformers prints them.
// Valid text is returned as is.
std::string utf8_sanitize(std::string_view text);
// Appends the UTF-8 encoding of code point `cp` (< 0x110000) to `out`.
void utf8_append(std::string& out, uint32_t cp);

}  // namespace kmoe
