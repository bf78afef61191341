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

// The Unicode Standard's "maximal subpart" substitution (Table 3-7 of well-formed
// sequences), as Python's errors="replace" and Rust's from_utf8_lossy (HF tokenizers'
// decoders) do it: a byte that cannot start a sequence is one U+FFFD; a sequence that starts
// well and breaks off is one U+FFFD for the bytes that fit, and scanning resumes at the byte
// that did not.
std::string utf8_sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  for (size_t pos = 0; pos < text.size();) {
    const unsigned char lead = byte(pos);
    if (lead < 0x80) {
      out.push_back(static_cast<char>(lead));
      ++pos;
      continue;
    }
    size_t need = 0;                     // continuation bytes after the lead
    unsigned char lo = 0x80, hi = 0xBF;  // the range allowed for the first of them
    if (lead >= 0xC2 && lead <= 0xDF) {
      need = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      need = 2;
      if (lead == 0xE0) lo = 0xA0;  // no overlong forms
      if (lead == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      need = 3;
      if (lead == 0xF0) lo = 0x90;  // no overlong forms
      if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    }
    size_t fit = 1;
    while (fit <= need && pos + fit < text.size()) {
      const unsigned char b = byte(pos + fit);
      if (fit == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
      ++fit;
    }
    if (need > 0 && fit == need + 1) {
      out.append(text.substr(pos, fit));
    } else {
      utf8_append(out, 0xFFFD);
    }
    pos += fit;
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
