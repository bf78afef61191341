// Byte-level BPE: see bpe_tokenizer.h. The merge loop is the usual heap of adjacent pairs
// keyed by (rank, position), as HF tokenizers and llama.cpp do; pieces are cached because
// running text repeats the same words.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/tokenizers/bpe_tokenizer.h"

#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <stdexcept>

#include "data/text/json_file.h"

namespace kmoe {

namespace {

const char* const kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's byte -> printable code point table (bytes_to_unicode in openai/gpt-2).
std::array<uint32_t, 256> byte_to_codepoint_table() {
  std::array<uint32_t, 256> table{};
  uint32_t extra = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? b : 256 + extra++;
  }
  return table;
}

uint32_t utf8_decode(std::string_view s, size_t pos, size_t len) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[pos + i])); };
  if (len == 1) return b(0);
  if (len == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (len == 3) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

// A byte-level token string ("Ġthe") as raw bytes (" the"); a string with code points
// outside GPT-2's table (an added token such as "<|im_start|>" is inside it) stays as is.
std::string byte_level_to_bytes(const std::string& token) {
  static const std::unordered_map<uint32_t, uint8_t> reverse = [] {
    std::unordered_map<uint32_t, uint8_t> m;
    const auto table = byte_to_codepoint_table();
    for (int b = 0; b < 256; ++b) m[table[b]] = static_cast<uint8_t>(b);
    return m;
  }();
  std::string out;
  for (size_t pos = 0; pos < token.size();) {
    const size_t len = utf8_char_length(token, pos);
    const auto it = reverse.find(utf8_decode(token, pos, len));
    if (it == reverse.end()) return token;
    out += static_cast<char>(it->second);
    pos += len;
  }
  return out;
}

bool is_space_byte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_word_byte(std::string_view text, size_t pos) {
  const auto c = static_cast<unsigned char>(text[pos]);
  return c >= 0x80 || std::isalnum(c) || c == '_';
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

struct BpeTokenizer::PreStep {
  pcre2_code* code = nullptr;  // null: no split (ByteLevel with use_regex false)
  BpeSplitBehavior behavior = BpeSplitBehavior::isolated;
  bool invert = false;
  bool add_prefix_space = false;

  PreStep(const std::string& pattern, BpeSplitBehavior behavior_, bool invert_, bool add_prefix_space_,
          const std::string& source)
      : behavior(behavior_), invert(invert_), add_prefix_space(add_prefix_space_) {
    if (pattern.empty()) return;
    int error = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &error,
                         &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw std::runtime_error(source + ": pre-tokenizer regex '" + pattern + "' does not compile at offset " +
                               std::to_string(offset) + ": " + reinterpret_cast<char*>(message));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  }
  ~PreStep() { pcre2_code_free(code); }
  PreStep(const PreStep&) = delete;
  PreStep& operator=(const PreStep&) = delete;

  // Appends the pieces of `text` to `out` (HF's NormalizedString::split with this behavior).
  void split(std::string_view text, std::vector<std::string>& out) const {
    std::string prefixed;
    if (add_prefix_space && !text.empty() && text[0] != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    if (!code) {
      if (!text.empty()) out.emplace_back(text);
      return;
    }
    struct Segment {
      size_t begin, end;
      bool match;
    };
    std::vector<Segment> segments;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    size_t pos = 0, prev = 0;
    while (pos <= text.size()) {
      const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                                 pos == 0 ? 0 : PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        pcre2_match_data_free(md);
        throw std::runtime_error("tokenizer input is not valid UTF-8 (PCRE2 error " + std::to_string(rc) + ")");
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t begin = ov[0], end = ov[1];
      if (end == begin) {  // empty match: step one character on
        if (begin >= text.size()) break;
        pos = begin + utf8_char_length(text, begin);
        continue;
      }
      if (begin > prev) segments.push_back({prev, begin, false});
      segments.push_back({begin, end, true});
      prev = pos = end;
    }
    pcre2_match_data_free(md);
    if (prev < text.size()) segments.push_back({prev, text.size(), false});
    if (invert) {
      for (auto& s : segments) s.match = !s.match;
    }

    std::vector<Segment> kept;
    bool previous_match = false;
    switch (behavior) {
      case BpeSplitBehavior::isolated:
        kept = segments;
        break;
      case BpeSplitBehavior::removed:
        for (const auto& s : segments) {
          if (!s.match) kept.push_back(s);
        }
        break;
      case BpeSplitBehavior::merged_with_previous:
        for (const auto& s : segments) {
          if (s.match && !previous_match && !kept.empty()) {
            kept.back().end = s.end;
          } else {
            kept.push_back(s);
          }
          previous_match = s.match;
        }
        break;
      case BpeSplitBehavior::merged_with_next:
        for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
          if (it->match && !previous_match && !kept.empty()) {
            kept.back().begin = it->begin;
          } else {
            kept.push_back(*it);
          }
          previous_match = it->match;
        }
        std::reverse(kept.begin(), kept.end());
        break;
      case BpeSplitBehavior::contiguous:
        for (const auto& s : segments) {
          if (!kept.empty() && s.match == previous_match) {
            kept.back().end = s.end;
          } else {
            kept.push_back(s);
          }
          previous_match = s.match;
        }
        break;
    }
    for (const auto& s : kept) {
      if (s.end > s.begin) out.emplace_back(text.substr(s.begin, s.end - s.begin));
    }
  }
};

std::vector<std::string> bpe_pre_regexes(const std::string& pre) {
  if (pre == "default" || pre == "gpt2" || pre == "gpt-2") return {kGpt2Regex};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe") return {kLlama3Regex};
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return {kQwen2Regex};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell" ||
      pre == "exaone" || pre == "minerva") {
    return {R"(\p{N})", kGpt2Regex};
  }
  throw std::runtime_error("unknown BPE pre-tokenizer '" + pre +
                           "' (known: default, gpt2, llama-bpe, llama3, qwen2, smollm, starcoder, refact, command-r)");
}

BpeTokenizer::BpeTokenizer() = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer::BpeTokenizer(const BpeVocab& vocab, const std::string& source) {
  source_ = source;
  if (vocab.tokens.empty()) throw std::runtime_error(source + ": tokenizer.ggml.tokens is empty");
  if (!vocab.token_types.empty() && vocab.token_types.size() != vocab.tokens.size()) {
    throw std::runtime_error(source + ": tokenizer.ggml.token_type has " + std::to_string(vocab.token_types.size()) +
                             " entries for " + std::to_string(vocab.tokens.size()) + " tokens");
  }
  tokens_ = vocab.tokens;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const int32_t type = vocab.token_types.empty() ? 1 : vocab.token_types[i];
    if (type == 3 || type == 4) {
      BpeAddedToken t;
      t.id = static_cast<int32_t>(i);
      t.content = tokens_[i];
      t.special = type == 3;
      added_.push_back(t);
    }
  }
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(vocab.merges.size());
  for (size_t i = 0; i < vocab.merges.size(); ++i) {
    const std::string& m = vocab.merges[i];
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= m.size() || m.find(' ', space + 1) != m.npos) {
      throw std::runtime_error(source + ": tokenizer.ggml.merges[" + std::to_string(i) + "] '" + m +
                               "' is not two tokens separated by one space");
    }
    merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }
  for (const auto& pattern : bpe_pre_regexes(vocab.pre)) {
    steps_.push_back(std::make_shared<PreStep>(pattern, BpeSplitBehavior::isolated, false, false, source));
  }
  const auto check_id = [&](int32_t id, const char* key) {
    if (id >= static_cast<int32_t>(tokens_.size())) {
      throw std::runtime_error(source + ": tokenizer.ggml." + key + " " + std::to_string(id) + " is outside the " +
                               std::to_string(tokens_.size()) + "-token vocabulary");
    }
    return id;
  };
  bos_id = check_id(vocab.bos_id, "bos_token_id");
  eos_id = check_id(vocab.eos_id, "eos_token_id");
  unk_id = check_id(vocab.unk_id, "unknown_token_id");
  pad_id = check_id(vocab.pad_id, "padding_token_id");
  if (vocab.add_bos) {
    if (bos_id < 0) throw std::runtime_error(source + ": add_bos_token is set but there is no bos_token_id");
    prefix_ids_.push_back(bos_id);
  }
  vocab_finish(merges);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open tokenizer file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return from_json_text(buffer.str(), path);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json_text(const std::string& json_text, const std::string& source) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw std::runtime_error(source + ": not valid JSON: " + e.what());
  }
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->source_ = source;
  const auto fail = [&](const std::string& what) { return std::runtime_error(source + ": " + what); };
  std::vector<std::pair<std::string, std::string>> merges;
  try {
    const json& model = j.at("model");
    if (model.value("type", std::string("BPE")) != "BPE") {
      throw fail("model.type '" + model.at("type").get<std::string>() +
                 "' is not BPE (only byte-level BPE is read from tokenizer.json)");
    }
    if (!model.value("continuing_subword_prefix", json()).is_null() ||
        !model.value("end_of_word_suffix", json()).is_null()) {
      throw fail("model.continuing_subword_prefix / end_of_word_suffix are not supported");
    }
    t->ignore_merges_ = model.value("ignore_merges", false);
    const json& vocab = model.at("vocab");
    if (!vocab.is_object()) throw fail("model.vocab is not an object");
    int32_t max_id = -1;
    for (const auto& [token, id] : vocab.items())
      max_id = std::max(max_id, json_token_id(id, source + ": model.vocab['" + token + "']"));
    for (const auto& a : j.value("added_tokens", json::array()))
      max_id = std::max(max_id, json_token_id(a.at("id"), source + ": added_tokens id"));
    t->tokens_.assign(static_cast<size_t>(max_id + 1), std::string());
    for (const auto& [token, id] : vocab.items()) {
      const int32_t i = json_token_id(id, source + ": model.vocab['" + token + "']");
      if (i < 0) throw fail("model.vocab['" + token + "'] has a negative id");
      t->tokens_[i] = token;
    }
    const json& jm = model.at("merges");
    for (size_t i = 0; i < jm.size(); ++i) {
      if (jm[i].is_string()) {
        const std::string m = jm[i].get<std::string>();
        const size_t space = m.find(' ');
        if (space == std::string::npos || m.find(' ', space + 1) != std::string::npos) {
          throw fail("model.merges[" + std::to_string(i) + "] '" + m + "' is not two tokens separated by one space");
        }
        merges.emplace_back(m.substr(0, space), m.substr(space + 1));
      } else if (jm[i].is_array() && jm[i].size() == 2) {
        merges.emplace_back(jm[i][0].get<std::string>(), jm[i][1].get<std::string>());
      } else {
        throw fail("model.merges[" + std::to_string(i) + "] is neither \"a b\" nor [a, b]");
      }
    }
    for (const auto& a : j.value("added_tokens", json::array())) {
      BpeAddedToken at;
      at.id = json_token_id(a.at("id"), source + ": added_tokens id");
      at.content = a.at("content").get<std::string>();
      at.special = a.value("special", false);
      at.single_word = a.value("single_word", false);
      at.lstrip = a.value("lstrip", false);
      at.rstrip = a.value("rstrip", false);
      if (at.content.empty()) throw fail("added token " + std::to_string(at.id) + " has empty content");
      t->tokens_[at.id] = at.content;
      t->added_.push_back(at);
    }
    if (const auto& unk = model.value("unk_token", json()); unk.is_string()) {
      const auto it = vocab.find(unk.get<std::string>());
      if (it != vocab.end()) t->unk_id = json_token_id(*it, source + ": model.unk_token");
    }

    const json& normalizer = j.value("normalizer", json());
    if (!normalizer.is_null() && !(normalizer.value("type", std::string()) == "Sequence" &&
                                   normalizer.value("normalizers", json::array()).empty())) {
      throw fail("normalizer '" + normalizer.value("type", std::string("?")) + "' is not supported");
    }

    bool byte_level = false;
    std::function<void(const json&, const std::string&)> add_pre = [&](const json& p, const std::string& where) {
      const std::string type = p.at("type").get<std::string>();
      if (type == "Sequence") {
        const json& list = p.at("pretokenizers");
        for (size_t i = 0; i < list.size(); ++i) add_pre(list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
      } else if (type == "ByteLevel") {
        byte_level = true;
        t->steps_.push_back(std::make_shared<PreStep>(p.value("use_regex", true) ? kGpt2Regex : "",
                                                      BpeSplitBehavior::isolated, false,
                                                      p.value("add_prefix_space", false), source));
      } else if (type == "Split") {
        const json& pattern = p.at("pattern");
        std::string regex;
        if (pattern.contains("Regex")) {
          regex = pattern.at("Regex").get<std::string>();
        } else if (pattern.contains("String")) {
          regex = regex_escape(pattern.at("String").get<std::string>());
        } else {
          throw fail(where + ".pattern is neither Regex nor String");
        }
        const std::string b = p.at("behavior").get<std::string>();
        BpeSplitBehavior behavior;
        if (b == "Isolated") {
          behavior = BpeSplitBehavior::isolated;
        } else if (b == "Removed") {
          behavior = BpeSplitBehavior::removed;
        } else if (b == "MergedWithPrevious") {
          behavior = BpeSplitBehavior::merged_with_previous;
        } else if (b == "MergedWithNext") {
          behavior = BpeSplitBehavior::merged_with_next;
        } else if (b == "Contiguous") {
          behavior = BpeSplitBehavior::contiguous;
        } else {
          throw fail(where + ".behavior '" + b + "' is unknown");
        }
        t->steps_.push_back(std::make_shared<PreStep>(regex, behavior, p.value("invert", false), false, source));
      } else if (type == "Digits") {
        t->steps_.push_back(std::make_shared<PreStep>(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)",
                                                      BpeSplitBehavior::isolated, false, false, source));
      } else {
        throw fail(where + ": pre-tokenizer type '" + type + "' is not supported");
      }
    };
    const json& pre = j.value("pre_tokenizer", json());
    if (!pre.is_null()) add_pre(pre, "pre_tokenizer");
    if (!byte_level) throw fail("pre_tokenizer has no ByteLevel step: only byte-level BPE is supported");

    std::function<void(const json&, const std::string&)> add_post = [&](const json& p, const std::string& where) {
      const std::string type = p.at("type").get<std::string>();
      if (type == "Sequence") {
        const json& list = p.at("processors");
        for (size_t i = 0; i < list.size(); ++i) add_post(list[i], where + ".processors[" + std::to_string(i) + "]");
      } else if (type == "TemplateProcessing") {
        bool after = false;
        for (const auto& item : p.at("single")) {
          if (item.contains("Sequence")) {
            after = true;
          } else if (item.contains("SpecialToken")) {
            const std::string name = item.at("SpecialToken").at("id").get<std::string>();
            for (const auto& id : p.at("special_tokens").at(name).at("ids")) {
              (after ? t->suffix_ids_ : t->prefix_ids_).push_back(json_token_id(id, source + ": " + where + ".special_tokens['" + name + "'].ids"));
            }
          } else {
            throw fail(where + ".single has an item that is neither Sequence nor SpecialToken");
          }
        }
      } else if (type != "ByteLevel") {
        throw fail(where + ": post-processor type '" + type + "' is not supported");
      }
    };
    const json& post = j.value("post_processor", json());
    if (!post.is_null()) add_post(post, "post_processor");
  } catch (const json::exception& e) {
    throw fail(std::string("malformed tokenizer.json: ") + e.what());
  }
  if (!t->prefix_ids_.empty()) t->bos_id = t->prefix_ids_.front();
  if (!t->suffix_ids_.empty()) t->eos_id = t->suffix_ids_.back();
  t->vocab_finish(merges);
  return t;
}

void BpeTokenizer::vocab_finish(const std::vector<std::pair<std::string, std::string>>& merges) {
  special_.assign(tokens_.size(), 0);
  bytes_.resize(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].empty()) continue;  // a hole in the ids
    token_ids_.emplace(tokens_[i], static_cast<int32_t>(i));
  }
  for (const auto& a : added_) {
    if (a.id < 0 || a.id >= static_cast<int32_t>(tokens_.size())) {
      throw std::runtime_error(source_ + ": added token '" + a.content + "' has id " + std::to_string(a.id) +
                               " outside the vocabulary");
    }
    special_[a.id] = a.special ? 1 : 0;
    token_ids_[a.content] = a.id;
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    bytes_[i] = special_[i] ? tokens_[i] : byte_level_to_bytes(tokens_[i]);
    if (!tokens_[i].empty()) bytes_ids_.emplace(bytes_[i], static_cast<int32_t>(i));
  }
  for (const auto& a : added_) bytes_[a.id] = a.content;
  const auto table = byte_to_codepoint_table();
  for (int b = 0; b < 256; ++b) {
    std::string name;
    utf8_append(name, table[b]);
    const auto it = token_ids_.find(name);
    byte_ids_[b] = it == token_ids_.end() ? -1 : it->second;  // SmolLM2 lacks a few control bytes
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = token_ids_.find(a), ib = token_ids_.find(b), im = token_ids_.find(a + b);
    if (ia == token_ids_.end() || ib == token_ids_.end() || im == token_ids_.end()) {
      throw std::runtime_error(source_ + ": merge " + std::to_string(rank) + " '" + a + " " + b +
                               "' names a token missing from the vocabulary");
    }
    const uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    merges_.emplace(key, std::make_pair(static_cast<int32_t>(rank), im->second));  // the first (lowest) rank wins
  }
  std::sort(added_.begin(), added_.end(),
            [](const BpeAddedToken& x, const BpeAddedToken& y) { return x.content.size() > y.content.size(); });
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  if (!text.empty()) pieces.emplace_back(text);
  for (const auto& step : steps_) {
    std::vector<std::string> next;
    for (const auto& p : pieces) step->split(p, next);
    pieces = std::move(next);
  }
  return pieces;
}

void BpeTokenizer::word_encode(const std::string& word, std::vector<int32_t>& ids) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> out;
  const auto whole = bytes_ids_.find(word);
  if (ignore_merges_ && whole != bytes_ids_.end()) {
    out.push_back(whole->second);
  } else {
    struct Symbol {
      int32_t id;
      int prev, next;
    };
    struct Pair {
      int32_t rank;
      int left;
      int32_t left_id, right_id, merged;
      bool operator<(const Pair& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    // A byte the vocabulary lacks becomes the unknown token, and runs of them one unknown
    // (HF's fuse_unk); they never merge.
    std::vector<Symbol> symbols;
    for (size_t i = 0; i < word.size(); ++i) {
      int32_t id = byte_ids_[static_cast<unsigned char>(word[i])];
      if (id < 0) {
        if (unk_id < 0) {
          throw std::runtime_error(source_ + ": byte " + std::to_string(static_cast<unsigned char>(word[i])) +
                                   " has no token and the vocabulary has no unknown token");
        }
        if (!symbols.empty() && symbols.back().id == unk_id) continue;
        id = unk_id;
      }
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({id, index - 1, -1});
      if (index > 0) symbols[index - 1].next = index;
    }
    std::priority_queue<Pair> heap;
    const auto push_pair = [&](int left) {
      if (left < 0 || symbols[left].next < 0) return;
      const int32_t a = symbols[left].id, b = symbols[symbols[left].next].id;
      const auto it = merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
      if (it != merges_.end()) heap.push({it->second.first, left, a, b, it->second.second});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(static_cast<int>(i));
    while (!heap.empty()) {
      const Pair p = heap.top();
      heap.pop();
      Symbol& left = symbols[p.left];
      if (left.id != p.left_id || left.next < 0 || symbols[left.next].id != p.right_id) continue;  // stale
      Symbol& right = symbols[left.next];
      left.id = p.merged;
      right.id = -1;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = p.left;
      push_pair(left.prev);
      push_pair(p.left);
    }
    for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  }
  ids.insert(ids.end(), out.begin(), out.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() > 200000) cache_.clear();
  cache_.emplace(word, std::move(out));
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  if (add_special) ids = prefix_ids_;
  const auto encode_plain = [&](std::string_view plain) {
    for (const auto& piece : pre_tokenize(plain)) word_encode(piece, ids);
  };
  // Added tokens: leftmost, then longest (added_ is sorted by length), as HF's Aho-Corasick.
  size_t done = 0;
  for (size_t pos = 0; pos < text.size();) {
    const BpeAddedToken* found = nullptr;
    for (const auto& a : added_) {
      if (text.compare(pos, a.content.size(), a.content) != 0) continue;
      if (a.single_word && ((pos > 0 && is_word_byte(text, pos - 1)) ||
                            (pos + a.content.size() < text.size() && is_word_byte(text, pos + a.content.size())))) {
        continue;
      }
      found = &a;
      break;
    }
    if (!found) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + found->content.size();
    if (found->lstrip) {
      while (begin > done && is_space_byte(text[begin - 1])) --begin;
    }
    if (found->rstrip) {
      while (end < text.size() && is_space_byte(text[end])) ++end;
    }
    encode_plain(text.substr(done, begin - done));
    ids.push_back(found->id);
    done = pos = end;
  }
  encode_plain(text.substr(done));
  if (add_special) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(bytes_.size())) {
      throw std::runtime_error(source_ + ": cannot decode token id " + std::to_string(id) + " (vocabulary has " +
                               std::to_string(bytes_.size()) + ")");
    }
    if (skip_special && special_[id]) continue;
    out += bytes_[id];
  }
  return out;
}

int32_t BpeTokenizer::token_to_id(std::string_view token) const {
  const auto it = token_ids_.find(std::string(token));
  return it == token_ids_.end() ? -1 : it->second;
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(tokens_.size())) {
    throw std::runtime_error(source_ + ": token id " + std::to_string(id) + " is outside the vocabulary");
  }
  return tokens_[id];
}

}  // namespace kmoe
