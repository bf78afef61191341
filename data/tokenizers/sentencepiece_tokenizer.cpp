// SentencePiece: see sentencepiece_tokenizer.h. The segmentation follows sentencepiece's
// bpe_model.cc / unigram_model.cc (EncodeOptimized) step for step, including its tie
// breaks and float arithmetic, so ids match the reference exactly.
#include "data/tokenizers/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <queue>
#include <sstream>
#include <stdexcept>

namespace kmoe {

namespace {

const char* const kSpaceSymbol = "\xE2\x96\x81";  // U+2581 '▁'
const char* const kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Protocol-buffers wire format: a stream of (field << 3 | wire type) keys and values.
struct ProtoReader {
  std::string_view data;
  size_t pos = 0;
  const std::string& source;
  const char* message;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(source + ": malformed SentencePiece model (" + message + ", byte " + std::to_string(pos) +
                             "): " + what);
  }
  bool done() const { return pos >= data.size(); }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= data.size()) fail("truncated varint");
      const auto b = static_cast<uint8_t>(data[pos++]);
      value |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return value;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > data.size() - pos) fail("length-delimited field of " + std::to_string(n) + " bytes runs past the end");
    const std::string_view out = data.substr(pos, n);
    pos += n;
    return out;
  }
  float fixed32() {
    if (data.size() - pos < 4) fail("truncated 32-bit field");
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<uint8_t>(data[pos + i])) << (8 * i);
    pos += 4;
    float value;
    std::memcpy(&value, &bits, 4);
    return value;
  }
  void skip(int wire) {
    if (wire == 0) {
      varint();
    } else if (wire == 1) {
      if (data.size() - pos < 8) fail("truncated 64-bit field");
      pos += 8;
    } else if (wire == 2) {
      bytes();
    } else if (wire == 5) {
      fixed32();
    } else {
      fail("unsupported wire type " + std::to_string(wire));
    }
  }
  void expect(int wire, int want, int field) {
    if (wire != want) {
      fail("field " + std::to_string(field) + " has wire type " + std::to_string(wire) + ", expected " +
           std::to_string(want));
    }
  }
};

}  // namespace

SentencePieceModel sentencepiece_model_parse(std::string_view bytes, const std::string& source) {
  SentencePieceModel model;
  ProtoReader top{bytes, 0, source, "ModelProto"};
  bool have_trainer = false;
  while (!top.done()) {
    const uint64_t key = top.varint();
    const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (field == 1) {
      top.expect(wire, 2, field);
      ProtoReader r{top.bytes(), 0, source, "ModelProto.pieces"};
      SentencePiece piece;
      while (!r.done()) {
        const uint64_t k = r.varint();
        const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
        if (f == 1) {
          r.expect(w, 2, f);
          piece.piece = std::string(r.bytes());
        } else if (f == 2) {
          r.expect(w, 5, f);
          piece.score = r.fixed32();
        } else if (f == 3) {
          r.expect(w, 0, f);
          const uint64_t type = r.varint();
          if (type < 1 || type > 6) r.fail("piece type " + std::to_string(type) + " is not 1..6");
          piece.type = static_cast<SentencePieceType>(type);
        } else {
          r.skip(w);
        }
      }
      model.pieces.push_back(std::move(piece));
    } else if (field == 2) {
      top.expect(wire, 2, field);
      have_trainer = true;
      ProtoReader r{top.bytes(), 0, source, "ModelProto.trainer_spec"};
      while (!r.done()) {
        const uint64_t k = r.varint();
        const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
        const auto int_field = [&] {
          r.expect(w, 0, f);
          return static_cast<int32_t>(static_cast<int64_t>(r.varint()));
        };
        if (f == 3) {
          model.model_type = int_field();
        } else if (f == 24) {
          model.treat_whitespace_as_suffix = int_field() != 0;
        } else if (f == 35) {
          model.byte_fallback = int_field() != 0;
        } else if (f == 40) {
          model.unk_id = int_field();
        } else if (f == 41) {
          model.bos_id = int_field();
        } else if (f == 42) {
          model.eos_id = int_field();
        } else if (f == 43) {
          model.pad_id = int_field();
        } else if (f == 44) {
          r.expect(w, 2, f);
          model.unk_surface = std::string(r.bytes());
        } else {
          r.skip(w);
        }
      }
    } else if (field == 3) {
      top.expect(wire, 2, field);
      ProtoReader r{top.bytes(), 0, source, "ModelProto.normalizer_spec"};
      while (!r.done()) {
        const uint64_t k = r.varint();
        const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
        if (f == 1 || f == 2) {
          r.expect(w, 2, f);
          (f == 1 ? model.normalizer_name : model.precompiled_charsmap) = std::string(r.bytes());
        } else if (f >= 3 && f <= 5) {
          r.expect(w, 0, f);
          const bool v = r.varint() != 0;
          (f == 3 ? model.add_dummy_prefix : f == 4 ? model.remove_extra_whitespaces : model.escape_whitespaces) = v;
        } else {
          r.skip(w);
        }
      }
    } else {
      top.skip(wire);
    }
  }
  if (model.pieces.empty()) throw std::runtime_error(source + ": SentencePiece model has no pieces");
  if (!have_trainer) throw std::runtime_error(source + ": SentencePiece model has no trainer_spec");
  return model;
}

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path, bool add_bos, bool add_eos)
    : source_(path), add_bos_(add_bos), add_eos_(add_eos) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open SentencePiece model");
  std::stringstream buffer;
  buffer << in.rdbuf();
  model_ = sentencepiece_model_parse(buffer.str(), path);
  init();
}

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceModel model, const std::string& source, bool add_bos,
                                               bool add_eos)
    : model_(std::move(model)), source_(source), add_bos_(add_bos), add_eos_(add_eos) {
  init();
}

void SentencePieceTokenizer::init() {
  if (model_.model_type != 1 && model_.model_type != 2) {
    throw std::runtime_error(source_ + ": SentencePiece model_type " + std::to_string(model_.model_type) +
                             " is not supported (1 unigram, 2 BPE)");
  }
  if (!model_.precompiled_charsmap.empty()) {
    throw std::runtime_error(source_ + ": SentencePiece normalizer '" + model_.normalizer_name +
                             "' needs its precompiled charsmap, which kmoe does not implement (identity only)");
  }
  if (model_.treat_whitespace_as_suffix) {
    throw std::runtime_error(source_ + ": SentencePiece treat_whitespace_as_suffix is not supported");
  }
  const int32_t n = static_cast<int32_t>(model_.pieces.size());
  min_score_ = std::numeric_limits<float>::max();
  max_score_ = std::numeric_limits<float>::min();  // sentencepiece starts from FLT_MIN too
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  unk_id = -1;
  for (int32_t i = 0; i < n; ++i) {
    const SentencePiece& p = model_.pieces[i];
    if (p.piece.empty()) throw std::runtime_error(source_ + ": SentencePiece piece " + std::to_string(i) + " is empty");
    const bool normal = p.type == SentencePieceType::normal || p.type == SentencePieceType::user_defined ||
                        p.type == SentencePieceType::unused;
    if (!(normal ? pieces_ : reserved_).emplace(p.piece, i).second) {
      throw std::runtime_error(source_ + ": SentencePiece piece '" + p.piece + "' is defined twice");
    }
    if (p.type == SentencePieceType::normal) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
    if (p.type == SentencePieceType::user_defined) user_defined_.push_back(p.piece);
    if (p.type == SentencePieceType::unknown) unk_id = i;
    if (p.type == SentencePieceType::byte) {
      unsigned value = 0;
      if (p.piece.size() != 6 || std::sscanf(p.piece.c_str(), "<0x%2X>", &value) != 1) {
        throw std::runtime_error(source_ + ": SentencePiece byte piece '" + p.piece + "' is not <0xXX>");
      }
      byte_ids_[value] = i;
    }
    max_piece_bytes_ = std::max(max_piece_bytes_, p.piece.size());
  }
  if (unk_id < 0) throw std::runtime_error(source_ + ": SentencePiece model has no UNKNOWN piece");
  if (model_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      if (byte_ids_[b] < 0) {
        throw std::runtime_error(source_ + ": byte_fallback is set but byte piece " + std::to_string(b) +
                                 " is missing");
      }
    }
  }
  const auto id_or_none = [&](int32_t id) { return id >= 0 && id < n ? id : -1; };
  bos_id = id_or_none(model_.bos_id);
  eos_id = id_or_none(model_.eos_id);
  pad_id = id_or_none(model_.pad_id);
}

size_t SentencePieceTokenizer::user_defined_match(std::string_view text, size_t pos) const {
  size_t best = 0;
  for (const auto& u : user_defined_) {
    if (u.size() > best && text.compare(pos, u.size(), u) == 0) best = u.size();
  }
  return best;
}

std::string SentencePieceTokenizer::normalize(std::string_view text) const {
  const std::string space = model_.escape_whitespaces ? kSpaceSymbol : " ";
  std::string out;
  size_t pos = 0;
  if (model_.remove_extra_whitespaces) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
  }
  if (pos >= text.size()) return out;
  if (model_.add_dummy_prefix) out += space;
  bool prev_space = model_.remove_extra_whitespaces;
  while (pos < text.size()) {
    size_t len = user_defined_match(text, pos);
    std::string_view unit;
    if (len == 0) {
      len = utf8_char_length(text, pos);
      const auto lead = static_cast<unsigned char>(text[pos]);
      unit = (len == 1 && lead >= 0x80) ? std::string_view(kReplacement) : text.substr(pos, len);
    } else {
      unit = text.substr(pos, len);
    }
    if (prev_space) {
      while (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
    }
    if (!unit.empty()) {
      for (char c : unit) {
        if (model_.escape_whitespaces && c == ' ') {
          out += kSpaceSymbol;
        } else {
          out += c;
        }
      }
      prev_space = unit.back() == ' ';
    }
    pos += len;
    if (!model_.remove_extra_whitespaces) prev_space = false;
  }
  if (model_.remove_extra_whitespaces) {
    while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0) {
      out.resize(out.size() - space.size());
    }
  }
  return out;
}

std::vector<std::pair<std::string, int32_t>> SentencePieceTokenizer::bpe_segment(const std::string& text) const {
  struct Symbol {
    int prev, next;
    size_t begin, size;
    bool freeze;
  };
  struct Pair {
    int left, right;
    float score;
    size_t size;
  };
  const auto worse = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  std::vector<Symbol> symbols;
  std::unordered_map<std::string, std::pair<std::string, std::string>> rev_merge;  // unused pieces -> their parts
  for (size_t pos = 0; pos < text.size();) {
    size_t len = user_defined_match(text, pos);
    const bool freeze = len > 0;
    if (!freeze) len = utf8_char_length(text, pos);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, pos + len < text.size() ? index + 1 : -1, pos, len, freeze});
    pos += len;
  }
  const auto add_pair = [&](int left, int right) {
    if (left < 0 || right < 0 || symbols[left].freeze || symbols[right].freeze) return;
    const std::string piece = text.substr(symbols[left].begin, symbols[left].size + symbols[right].size);
    const auto it = pieces_.find(piece);
    if (it == pieces_.end()) return;
    agenda.push({left, right, model_.pieces[it->second].score, piece.size()});
    if (model_.pieces[it->second].type == SentencePieceType::unused) {
      rev_merge[piece] = {text.substr(symbols[left].begin, symbols[left].size),
                          text.substr(symbols[right].begin, symbols[right].size)};
    }
  };
  for (size_t i = 1; i < symbols.size(); ++i) add_pair(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.size == 0 || right.size == 0 || left.size + right.size != top.size) continue;  // stale
    left.size += right.size;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.size = 0;
    add_pair(left.prev, top.left);
    add_pair(top.left, left.next);
  }
  std::vector<std::pair<std::string, int32_t>> out;
  std::function<void(const std::string&)> resegment = [&](const std::string& w) {
    const int32_t id = token_to_id(w);
    const auto it = rev_merge.find(w);
    if (id >= 0 && model_.pieces[id].type == SentencePieceType::unused && it != rev_merge.end()) {
      resegment(it->second.first);
      resegment(it->second.second);
      return;
    }
    out.emplace_back(w, id < 0 ? unk_id : id);
  };
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    resegment(text.substr(symbols[i].begin, symbols[i].size));
  }
  return out;
}

std::vector<std::pair<std::string, int32_t>> SentencePieceTokenizer::unigram_segment(const std::string& text) const {
  struct Node {
    int32_t id = -1;
    float score = 0.0f;
    long starts_at = -1;
  };
  const size_t size = text.size();
  const float unk_score = min_score_ - 10.0f;  // sentencepiece's kUnkPenalty
  std::vector<Node> best(size + 1);
  for (size_t start = 0; start < size;) {
    const float till_here = best[start].score;
    const size_t mblen = utf8_char_length(text, start);
    bool has_single = false;
    for (size_t end = start + 1; end <= size && end - start <= max_piece_bytes_; ++end) {
      const auto it = pieces_.find(text.substr(start, end - start));
      if (it == pieces_.end()) continue;
      const SentencePiece& p = model_.pieces[it->second];
      if (p.type == SentencePieceType::unused) continue;
      const size_t length = end - start;
      const double score =
          p.type == SentencePieceType::user_defined ? (length * max_score_ - 0.1) : static_cast<double>(p.score);
      const double candidate = score + till_here;
      Node& target = best[end];
      if (target.starts_at == -1 || candidate > target.score) {
        target = {it->second, static_cast<float>(candidate), static_cast<long>(start)};
      }
      if (length == mblen) has_single = true;
    }
    if (!has_single) {
      Node& target = best[start + mblen];
      const float candidate = unk_score + till_here;
      if (target.starts_at == -1 || candidate > target.score) target = {unk_id, candidate, static_cast<long>(start)};
    }
    start += mblen;
  }
  std::vector<std::pair<std::string, int32_t>> out;
  for (long end = static_cast<long>(size); end > 0;) {
    const Node& node = best[end];
    out.emplace_back(text.substr(node.starts_at, end - node.starts_at), node.id);
    end = node.starts_at;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
  const std::string normalized = normalize(text);
  const auto pieces = model_.model_type == 2 ? bpe_segment(normalized) : unigram_segment(normalized);
  std::vector<int32_t> ids;
  if (add_special && add_bos_ && bos_id >= 0) ids.push_back(bos_id);
  bool previous_unk = false;
  for (const auto& [piece, id] : pieces) {
    const bool unk = id == unk_id;
    if (unk && model_.byte_fallback) {
      for (unsigned char c : piece) ids.push_back(byte_ids_[c]);
    } else if (!(unk && previous_unk)) {  // consecutive unknowns collapse into one
      ids.push_back(id);
    }
    previous_unk = unk && !model_.byte_fallback;
  }
  if (add_special && add_eos_ && eos_id >= 0) ids.push_back(eos_id);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string text, bytes;
  bool first = true;  // the first non-control piece loses its dummy-prefix space (sentencepiece's is_bos_ws)
  const auto flush_bytes = [&] {
    // Valid UTF-8 runs are copied; each stray byte becomes U+FFFD, as sentencepiece does.
    for (size_t pos = 0; pos < bytes.size();) {
      const size_t len = utf8_char_length(bytes, pos);
      if (len == 1 && static_cast<unsigned char>(bytes[pos]) >= 0x80) {
        text += kReplacement;
      } else {
        text.append(bytes, pos, len);
      }
      pos += len;
    }
    if (!bytes.empty()) first = false;
    bytes.clear();
  };
  const bool strip_first = model_.add_dummy_prefix || model_.remove_extra_whitespaces;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw std::runtime_error(source_ + ": cannot decode token id " + std::to_string(id) + " (vocabulary has " +
                               std::to_string(vocab_size()) + ")");
    }
    const SentencePiece& p = model_.pieces[id];
    if (p.type == SentencePieceType::byte) {
      bytes += static_cast<char>(std::stoi(p.piece.substr(3, 2), nullptr, 16));  // "<0xXX>", checked at load
      continue;
    }
    flush_bytes();
    if (p.type == SentencePieceType::control) {
      if (!skip_special) text += p.piece;
      continue;
    }
    if (p.type == SentencePieceType::unknown) {
      text += model_.unk_surface;
      first = false;
      continue;
    }
    std::string_view piece = p.piece;
    if (first && strip_first && piece.substr(0, 3) == kSpaceSymbol) piece.remove_prefix(3);
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.substr(pos, 3) == kSpaceSymbol) {
        text += ' ';
        pos += 3;
      } else {
        text += piece[pos++];
      }
    }
    first = false;
  }
  flush_bytes();
  return text;
}

int32_t SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const std::string key(token);
  if (const auto it = reserved_.find(key); it != reserved_.end()) return it->second;
  if (const auto it = pieces_.find(key); it != pieces_.end()) return it->second;
  return -1;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw std::runtime_error(source_ + ": token id " + std::to_string(id) + " is outside the vocabulary");
  }
  return model_.pieces[id].piece;
}

}  // namespace kmoe
