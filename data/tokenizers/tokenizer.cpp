// tokenizer_load picks the implementation from the file name; utf8_char_length is the one
// UTF-8 helper both implementations share.
#include "data/tokenizers/tokenizer.h"

#include <filesystem>
#include <stdexcept>

#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/sentencepiece_tokenizer.h"

namespace kmoe {

size_t utf8_char_length(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  size_t n = 1;
  if (lead >= 0xF0 && lead < 0xF8) {
    n = 4;
  } else if (lead >= 0xE0) {
    n = lead < 0xF0 ? 3 : 1;
  } else if (lead >= 0xC0) {
    n = 2;
  }
  if (pos + n > text.size()) return 1;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(text[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

std::string utf8_sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    const size_t n = utf8_char_length(text, pos);
    bool valid = lead < 0x80;
    if (n > 1) {
      uint32_t cp = lead & (0x7F >> n);
      for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
      static constexpr uint32_t min_of_length[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = cp >= min_of_length[n] && cp < 0x110000 && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (valid) {
      out.append(text.substr(pos, n));
    } else {
      utf8_append(out, 0xFFFD);
    }
    pos += n;
  }
  return out;
}

std::unique_ptr<Tokenizer> tokenizer_load(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path file = path;
  if (fs::is_directory(file)) {
    if (fs::exists(file / "tokenizer.json")) {
      file /= "tokenizer.json";
    } else if (fs::exists(file / "tokenizer.model")) {
      file /= "tokenizer.model";
    } else {
      throw std::runtime_error(path + ": no tokenizer.json or tokenizer.model in this folder");
    }
  }
  if (!fs::exists(file)) throw std::runtime_error(file.string() + ": tokenizer file not found");
  if (file.extension() == ".json") return BpeTokenizer::from_json_file(file.string());
  return std::make_unique<SentencePieceTokenizer>(file.string());
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace kmoe
