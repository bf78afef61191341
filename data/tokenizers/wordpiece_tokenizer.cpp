// WordPiece tokenizer; see the header. Text is decoded to code points once, normalized code
// point by code point through the generated tables (every BertNormalizer step is a per-code-
// point map), then re-encoded to UTF-8 for the vocabulary lookup.
#include "data/tokenizers/wordpiece_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "data/text/json_file.h"

namespace kmoe {
namespace {

struct UnicodeRange {
  uint32_t first, last;
  uint8_t bits;
};
struct UnicodeMapping {
  uint32_t cp;
  const char* utf8;
};
constexpr uint8_t kDelete = 1, kToSpace = 2, kPunct = 4, kWhitespace = 8, kMark = 16;

#include "data/tokenizers/wordpiece_unicode_tables.inc"

uint8_t unicode_class(uint32_t cp) {
  const auto* end = std::end(kUnicodeClasses);
  const auto* it = std::upper_bound(std::begin(kUnicodeClasses), end, cp,
                                    [](uint32_t c, const UnicodeRange& r) { return c < r.first; });
  if (it == std::begin(kUnicodeClasses)) return 0;
  --it;
  return cp <= it->last ? it->bits : 0;
}

template <size_t N>
const char* unicode_map(const UnicodeMapping (&table)[N], uint32_t cp) {
  const auto* it = std::lower_bound(std::begin(table), std::end(table), cp,
                                    [](const UnicodeMapping& m, uint32_t c) { return m.cp < c; });
  return it != std::end(table) && it->cp == cp ? it->utf8 : nullptr;
}

// HF's is_chinese_char (the CJK Unified Ideographs blocks, not all of CJK).
bool is_chinese_char(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Invalid UTF-8 bytes decode to U+FFFD, which clean_text then removes (HF never sees them:
// Python strings are valid).
std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_char_length(s, i);
    const auto b0 = static_cast<uint8_t>(s[i]);
    uint32_t cp = 0xFFFD;
    if (n == 1 && b0 < 0x80) {
      cp = b0;
    } else if (n > 1) {
      cp = b0 & (0xFF >> (n + 1));
      for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void lowercase_append(std::string& out, uint32_t cp, bool lowercase) {
  const char* lower = lowercase ? unicode_map(kLowercase, cp) : nullptr;
  if (lower) {
    out += lower;
  } else {
    utf8_append(out, cp);
  }
}

}  // namespace

WordpieceTokenizer::WordpieceTokenizer(std::vector<std::string> vocab, const WordpieceOptions& options,
                                       const std::string& source)
    : source_(source), options_(options), tokens_(std::move(vocab)), special_(tokens_.size(), 0) {
  if (tokens_.empty()) throw std::runtime_error(source_ + ": empty vocabulary");
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int32_t>(i));  // first wins
  auto need = [&](const std::string& token, const char* what) {
    const int32_t id = token_to_id(token);
    if (id < 0) throw std::runtime_error(source_ + ": " + what + " token " + token + " is not in the vocabulary");
    special_[id] = 1;
    added_.emplace_back(token, id);
    return id;
  };
  unk_id = need(options_.unk_token, "unknown");
  cls_id = need(options_.cls_token, "CLS");
  sep_id = need(options_.sep_token, "SEP");
  bos_id = cls_id;
  eos_id = sep_id;
  pad_id = token_to_id(options_.pad_token);
  if (pad_id >= 0) special_[pad_id] = 1, added_.emplace_back(options_.pad_token, pad_id);
  if (const int32_t mask = token_to_id("[MASK]"); mask >= 0) special_[mask] = 1, added_.emplace_back("[MASK]", mask);
  std::stable_sort(added_.begin(), added_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::unique_ptr<WordpieceTokenizer> WordpieceTokenizer::from_json_file(const std::string& path) {
  const nlohmann::json j = json_file_read(path);
  auto field = [&](const std::string& what) { return path + ": " + what; };
  if (!j.contains("model") || j["model"].value("type", "") != "WordPiece") {
    throw std::runtime_error(field("model.type is not \"WordPiece\""));
  }
  const auto& model = j["model"];
  WordpieceOptions o;
  o.unk_token = model.value("unk_token", o.unk_token);
  o.continuing_subword_prefix = model.value("continuing_subword_prefix", o.continuing_subword_prefix);
  o.max_input_chars_per_word = model.value("max_input_chars_per_word", o.max_input_chars_per_word);
  const auto& norm = j.value("normalizer", nlohmann::json());
  if (norm.is_null()) {
    o.clean_text = o.handle_chinese_chars = o.strip_accents = o.lowercase = false;
  } else if (norm.value("type", "") == "BertNormalizer") {
    o.clean_text = norm.value("clean_text", true);
    o.handle_chinese_chars = norm.value("handle_chinese_chars", true);
    o.lowercase = norm.value("lowercase", true);
    const auto strip = norm.value("strip_accents", nlohmann::json());
    o.strip_accents = strip.is_null() ? o.lowercase : strip.get<bool>();
  } else {
    throw std::runtime_error(
        field("normalizer type " + norm.value("type", std::string("?")) + " is not supported (BertNormalizer only)"));
  }
  const auto& pre = j.value("pre_tokenizer", nlohmann::json());
  if (pre.is_null() || pre.value("type", "") != "BertPreTokenizer") {
    throw std::runtime_error(field("pre_tokenizer is not BertPreTokenizer"));
  }
  const auto& post = j.value("post_processor", nlohmann::json());
  if (!post.is_null()) {
    const std::string type = post.value("type", "");
    if (type == "BertProcessing") {
      o.cls_token = post.at("cls").at(0).get<std::string>();
      o.sep_token = post.at("sep").at(0).get<std::string>();
    } else if (type == "TemplateProcessing") {
      const auto& single = post.at("single");
      if (single.size() != 3 || !single[0].contains("SpecialToken") || !single[2].contains("SpecialToken")) {
        throw std::runtime_error(field("post_processor.single is not [CLS] $A [SEP]"));
      }
      o.cls_token = single[0]["SpecialToken"].at("id").get<std::string>();
      o.sep_token = single[2]["SpecialToken"].at("id").get<std::string>();
    } else {
      throw std::runtime_error(field("post_processor type " + type + " is not supported"));
    }
  }
  std::vector<std::pair<std::string, int32_t>> entries;
  for (const auto& [token, id] : model.at("vocab").items())
    entries.emplace_back(token, json_token_id(id, field("model.vocab['" + token + "']")));
  std::vector<std::string> vocab(entries.size());
  for (const auto& [token, id] : entries) {
    if (id < 0 || static_cast<size_t>(id) >= vocab.size()) {
      throw std::runtime_error(field("model.vocab id " + std::to_string(id) + " of " + token + " out of range"));
    }
    vocab[id] = token;
  }
  auto tok = std::make_unique<WordpieceTokenizer>(std::move(vocab), o, path);
  for (const auto& added : j.value("added_tokens", nlohmann::json::array())) {
    const std::string content = added.at("content");
    const int32_t id = added.at("id");
    if (id < 0 || id >= tok->vocab_size()) throw std::runtime_error(field("added token " + content + " out of range"));
    if (added.value("special", false)) tok->special_[id] = 1;
    if (std::none_of(tok->added_.begin(), tok->added_.end(), [&](const auto& a) { return a.first == content; })) {
      tok->added_.emplace_back(content, id);
    }
  }
  std::stable_sort(tok->added_.begin(), tok->added_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return tok;
}

std::unique_ptr<WordpieceTokenizer> WordpieceTokenizer::from_vocab_file(const std::string& path,
                                                                        const WordpieceOptions& options) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open vocabulary");
  std::vector<std::string> vocab;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(line);
  }
  return std::make_unique<WordpieceTokenizer>(std::move(vocab), options, path);
}

std::unique_ptr<WordpieceTokenizer> WordpieceTokenizer::from_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  if (fs::exists(dir / "tokenizer.json")) return from_json_file((dir / "tokenizer.json").string());
  if (!fs::exists(dir / "vocab.txt")) {
    throw std::runtime_error(folder + ": neither tokenizer.json nor vocab.txt (a WordPiece tokenizer is needed)");
  }
  WordpieceOptions o;
  if (fs::exists(dir / "tokenizer_config.json")) {
    const auto cfg = json_file_read((dir / "tokenizer_config.json").string());
    o.lowercase = cfg.value("do_lower_case", true);
    const auto strip = cfg.value("strip_accents", nlohmann::json());
    o.strip_accents = strip.is_null() ? o.lowercase : strip.get<bool>();
    o.handle_chinese_chars = cfg.value("tokenize_chinese_chars", true);
    for (auto [key, slot] : {std::pair{"unk_token", &o.unk_token}, std::pair{"cls_token", &o.cls_token},
                             std::pair{"sep_token", &o.sep_token}, std::pair{"pad_token", &o.pad_token}}) {
      if (cfg.contains(key) && cfg[key].is_string()) *slot = cfg[key].get<std::string>();
    }
  }
  return from_vocab_file((dir / "vocab.txt").string(), o);
}

int32_t WordpieceTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

std::string WordpieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) {
    throw std::out_of_range(source_ + ": token id " + std::to_string(id) + " out of range");
  }
  return tokens_[id];
}

std::string WordpieceTokenizer::normalize(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  for (const uint32_t cp : utf8_decode(text)) {
    const uint8_t bits = unicode_class(cp);
    if (options_.clean_text && (bits & kDelete)) continue;
    if (options_.clean_text && (bits & kToSpace)) {
      out += ' ';
      continue;
    }
    const bool chinese = options_.handle_chinese_chars && is_chinese_char(cp);
    if (chinese) out += ' ';
    if (!options_.strip_accents) {
      lowercase_append(out, cp, options_.lowercase);
    } else if (bits & kMark) {
      // a non-spacing mark: dropped
    } else if (cp >= 0xAC00 && cp <= 0xD7A3) {  // Hangul syllable: NFD is L V (T) jamo
      const uint32_t s = cp - 0xAC00;
      lowercase_append(out, 0x1100 + s / 588, options_.lowercase);
      lowercase_append(out, 0x1161 + (s % 588) / 28, options_.lowercase);
      if (s % 28) lowercase_append(out, 0x11A7 + s % 28, options_.lowercase);
    } else if (const char* stripped = unicode_map(kStripAccents, cp)) {
      for (const uint32_t c : utf8_decode(stripped)) lowercase_append(out, c, options_.lowercase);
    } else {
      lowercase_append(out, cp, options_.lowercase);
    }
    if (chinese) out += ' ';
  }
  return out;
}

std::vector<std::string> WordpieceTokenizer::pre_tokenize(std::string_view normalized) const {
  std::vector<std::string> words;
  std::string word;
  for (const uint32_t cp : utf8_decode(normalized)) {
    const uint8_t bits = unicode_class(cp);
    if (bits & (kWhitespace | kPunct)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      if (bits & kPunct) {
        std::string p;
        utf8_append(p, cp);
        words.push_back(std::move(p));
      }
    } else {
      utf8_append(word, cp);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

void WordpieceTokenizer::word_encode(const std::string& word, std::vector<int32_t>& ids) const {
  const std::vector<uint32_t> cps = utf8_decode(word);
  if (static_cast<int64_t>(cps.size()) > options_.max_input_chars_per_word) {
    ids.push_back(unk_id);
    return;
  }
  std::vector<size_t> offsets;  // byte offset of each code point, plus the end
  for (size_t i = 0; i < word.size(); i += utf8_char_length(word, i)) offsets.push_back(i);
  offsets.push_back(word.size());
  const size_t first = ids.size();
  size_t start = 0;
  while (start + 1 < offsets.size()) {
    int32_t found = -1;
    size_t end = offsets.size() - 1;
    for (; end > start; --end) {
      std::string piece = word.substr(offsets[start], offsets[end] - offsets[start]);
      if (start > 0) piece = options_.continuing_subword_prefix + piece;
      found = token_to_id(piece);
      if (found >= 0) break;
    }
    if (found < 0) {  // any unmatched piece turns the whole word into [UNK]
      ids.resize(first);
      ids.push_back(unk_id);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

std::vector<int32_t> WordpieceTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  if (add_special) ids.push_back(cls_id);
  auto encode_segment = [&](std::string_view segment) {
    for (const std::string& word : pre_tokenize(normalize(segment))) word_encode(word, ids);
  };
  size_t segment_start = 0;
  for (size_t i = 0; i < text.size();) {
    bool matched = false;
    for (const auto& [content, id] : added_) {
      if (text.compare(i, content.size(), content) == 0) {
        encode_segment(text.substr(segment_start, i - segment_start));
        ids.push_back(id);
        i += content.size();
        segment_start = i;
        matched = true;
        break;
      }
    }
    if (!matched) ++i;
  }
  encode_segment(text.substr(segment_start));
  if (add_special) ids.push_back(sep_id);
  return ids;
}

// HF's WordPiece decoder with cleanup: continuations glued, other tokens space-separated;
// the cleanup replacements run on each token with its leading space (tokenizers 0.20 does it
// per token), so only " ." " ?" " !" " ," (and the like) ever match.
std::string WordpieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  static const std::pair<std::string, std::string> cleanup[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  std::string out;
  bool first = true;
  const std::string& prefix = options_.continuing_subword_prefix;
  for (const int32_t id : ids) {
    if (skip_special && id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id]) continue;
    std::string token = id_to_token(id);
    if (!first && token.compare(0, prefix.size(), prefix) == 0) {
      token = token.substr(prefix.size());
    } else if (!first) {
      token = " " + token;
    }
    first = false;
    for (const auto& [from, to] : cleanup) {
      for (size_t hit = 0; (hit = token.find(from, hit)) != std::string::npos; hit += to.size()) {
        token.replace(hit, from.size(), to);
      }
    }
    out += token;
  }
  return out;
}

}  // namespace kmoe
