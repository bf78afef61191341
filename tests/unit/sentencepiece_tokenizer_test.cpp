#include "data/tokenizers/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

namespace kmoe {
namespace {

// A hand-built model: <unk> <s> </s>, 256 byte pieces, then the given normal pieces.
SentencePieceModel tiny_model(int32_t model_type, const std::vector<std::pair<std::string, float>>& normal,
                              bool byte_fallback) {
  SentencePieceModel m;
  m.model_type = model_type;
  m.byte_fallback = byte_fallback;
  m.pieces.push_back({"<unk>", 0.0f, SentencePieceType::unknown});
  m.pieces.push_back({"<s>", 0.0f, SentencePieceType::control});
  m.pieces.push_back({"</s>", 0.0f, SentencePieceType::control});
  if (byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      m.pieces.push_back({name, 0.0f, SentencePieceType::byte});
    }
  }
  for (const auto& [piece, score] : normal) m.pieces.push_back({piece, score, SentencePieceType::normal});
  m.normalizer_name = "identity";
  m.remove_extra_whitespaces = false;
  return m;
}

const std::string kSpace = "\xE2\x96\x81";

TEST(SentencePieceTokenizer, NormalizeAddsDummyPrefixAndEscapesSpaces) {
  SentencePieceModel m = tiny_model(2, {{"a", -1}}, false);
  EXPECT_EQ(SentencePieceTokenizer(m, "t").normalize("a  b"), kSpace + "a" + kSpace + kSpace + "b");
  m.remove_extra_whitespaces = true;
  EXPECT_EQ(SentencePieceTokenizer(m, "t").normalize("  a   b  "), kSpace + "a" + kSpace + "b");
  EXPECT_EQ(SentencePieceTokenizer(m, "t").normalize("   "), "");
}

TEST(SentencePieceTokenizer, BpeMergesHighestScoringPairFirst) {
  // "▁ab": ▁a (-1) beats ab (-2), then ▁ab (-3) completes it
  const SentencePieceTokenizer tok(
      tiny_model(2, {{kSpace, -5}, {"a", -6}, {"b", -7}, {kSpace + "a", -1}, {"ab", -2}, {kSpace + "ab", -3}}, false),
      "t");
  EXPECT_EQ(tok.encode("ab", false), (std::vector<int32_t>{tok.token_to_id(kSpace + "ab")}));
  EXPECT_EQ(tok.encode("ab", true), (std::vector<int32_t>{1, tok.token_to_id(kSpace + "ab")}));
  EXPECT_EQ(tok.decode(tok.encode("ab", true)), "<s>ab");
  EXPECT_EQ(tok.decode(tok.encode("ab", true), true), "ab");
}

TEST(SentencePieceTokenizer, UnknownCharactersFallBackToBytesOrOneUnk) {
  const std::vector<std::pair<std::string, float>> pieces = {{kSpace, -1}, {"a", -2}};
  const SentencePieceTokenizer bytes(tiny_model(2, pieces, true), "t");
  const auto ids = bytes.encode("a\xC3\xA9", false);  // é is not a piece: two byte pieces
  EXPECT_EQ(ids, (std::vector<int32_t>{bytes.token_to_id(kSpace), bytes.token_to_id("a"), 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(bytes.decode(ids), "a\xC3\xA9");
  EXPECT_EQ(bytes.decode({3 + 0xC3}), "\xEF\xBF\xBD");  // a lone byte decodes to U+FFFD
  const SentencePieceTokenizer unk(tiny_model(1, pieces, false), "t");
  EXPECT_EQ(unk.encode("a\xC3\xA9\xC3\xA9", false), (std::vector<int32_t>{unk.token_to_id(kSpace), 4, 0}));
  EXPECT_EQ(unk.decode({4, 0}), "a \xE2\x81\x87 ");
}

TEST(SentencePieceTokenizer, UnigramTakesTheBestScoringPath) {
  // "▁abc": ▁ab + c = -2 -2 = -4 beats ▁ + abc = -1 -4 = -5 and single letters
  const SentencePieceTokenizer tok(
      tiny_model(1, {{kSpace, -1}, {"a", -3}, {"b", -3}, {"c", -2}, {kSpace + "ab", -2}, {"abc", -4}}, false), "t");
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{tok.token_to_id(kSpace + "ab"), tok.token_to_id("c")}));
  EXPECT_EQ(tok.decode(tok.encode("abc", false)), "abc");
}

TEST(SentencePieceTokenizer, UserDefinedPiecesAreNeverSplit) {
  SentencePieceModel m = tiny_model(2, {{kSpace, -1}, {"a", -2}, {"<", -3}}, true);
  m.pieces.push_back({"<sep>", 0.0f, SentencePieceType::user_defined});
  const SentencePieceTokenizer tok(m, "t");
  const auto ids = tok.encode("a<sep>a", false);
  EXPECT_EQ(ids[2], tok.token_to_id("<sep>"));
  EXPECT_EQ(tok.decode(ids), "a<sep>a");
}

// Builds protobuf bytes: key varint then payload.
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  return out + static_cast<char>(v);
}
std::string field_bytes(int field, const std::string& payload) {
  return varint(field << 3 | 2) + varint(payload.size()) + payload;
}
std::string field_varint(int field, uint64_t v) {
  return varint(field << 3) + varint(v);
}
std::string field_float(int field, float f) {
  std::string out = varint(field << 3 | 5);
  char b[4];
  std::memcpy(b, &f, 4);
  return out + std::string(b, 4);
}
std::string piece(const std::string& text, float score, int type) {
  return field_bytes(1, field_bytes(1, text) + field_float(2, score) + field_varint(3, type));
}

TEST(SentencePieceTokenizer, ParsesModelProtoFieldsAndDefaults) {
  const std::string proto = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3) + piece("x", -1.5f, 1) +
                            field_bytes(2, field_varint(3, 2) + field_varint(41, 1) + field_varint(43, 2)) +
                            field_bytes(3, field_bytes(1, "identity") + field_varint(4, 0));
  const SentencePieceModel m = sentencepiece_model_parse(proto, "p.model");
  ASSERT_EQ(m.pieces.size(), 4u);
  EXPECT_EQ(m.pieces[3].piece, "x");
  EXPECT_FLOAT_EQ(m.pieces[3].score, -1.5f);
  EXPECT_EQ(m.pieces[0].type, SentencePieceType::unknown);
  EXPECT_EQ(m.model_type, 2);
  EXPECT_EQ(m.pad_id, 2);
  EXPECT_EQ(m.eos_id, 2);  // proto2 default
  EXPECT_FALSE(m.remove_extra_whitespaces);
  EXPECT_TRUE(m.add_dummy_prefix);  // proto2 default
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "no error; expected one mentioning " << fragment;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(SentencePieceTokenizer, MalformedModelsNameFileAndProblem) {
  const std::string ok = piece("<unk>", 0, 2) + field_bytes(2, field_varint(3, 1));
  expect_error([&] { sentencepiece_model_parse(ok.substr(0, ok.size() - 1), "p.model"); }, "p.model: malformed");
  expect_error([&] { sentencepiece_model_parse(std::string("\x0A\xFF", 2), "p.model"); }, "truncated varint");
  expect_error([&] { sentencepiece_model_parse(field_varint(1, 3), "p.model"); }, "field 1 has wire type 0");
  expect_error([&] { sentencepiece_model_parse(piece("a", 0, 9) + field_bytes(2, ""), "p.model"); }, "piece type 9");
  expect_error([&] { sentencepiece_model_parse(field_bytes(2, ""), "p.model"); }, "has no pieces");
  expect_error([&] { sentencepiece_model_parse(piece("a", 0, 1), "p.model"); }, "no trainer_spec");
  expect_error([&] { SentencePieceTokenizer("/nonexistent/tokenizer.model"); }, "cannot open");

  SentencePieceModel m = tiny_model(2, {{"a", -1}}, false);
  m.precompiled_charsmap = "xx";
  m.normalizer_name = "nmt_nfkc";
  expect_error([&] { SentencePieceTokenizer(m, "p.model"); }, "normalizer 'nmt_nfkc'");
  m = tiny_model(3, {{"a", -1}}, false);
  expect_error([&] { SentencePieceTokenizer(m, "p.model"); }, "model_type 3");
  m = tiny_model(2, {{"a", -1}, {"a", -2}}, false);
  expect_error([&] { SentencePieceTokenizer(m, "p.model"); }, "'a' is defined twice");
  m = tiny_model(2, {{"a", -1}}, false);
  m.byte_fallback = true;
  expect_error([&] { SentencePieceTokenizer(m, "p.model"); }, "byte piece 0 is missing");
  m = tiny_model(2, {{"a", -1}}, false);
  m.pieces.erase(m.pieces.begin());
  expect_error([&] { SentencePieceTokenizer(m, "p.model"); }, "no UNKNOWN piece");
  const SentencePieceTokenizer tok(tiny_model(2, {{"a", -1}}, false), "p.model");
  expect_error([&] { tok.decode({100}); }, "cannot decode token id 100");
}

}  // namespace
}  // namespace kmoe
