#include "data/tokenizers/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"

namespace kmoe {
namespace {

TEST(Tokenizer, Utf8CharLengthHandlesEveryWidthAndBadBytes) {
  const std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
  EXPECT_EQ(utf8_char_length(s, 0), 1u);
  EXPECT_EQ(utf8_char_length(s, 1), 2u);
  EXPECT_EQ(utf8_char_length(s, 3), 3u);
  EXPECT_EQ(utf8_char_length(s, 6), 4u);
  EXPECT_EQ(utf8_char_length("\xE4\xB8", 0), 1u);  // truncated
  EXPECT_EQ(utf8_char_length("\x80x", 0), 1u);     // stray continuation byte
  EXPECT_EQ(utf8_char_length("\xC3x", 0), 1u);     // lead without continuation
}

TEST(Tokenizer, Utf8SanitizeReplacesEveryInvalidSequenceAndKeepsValidText) {
  const std::string valid = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80 The answer is B.";
  EXPECT_EQ(utf8_sanitize(valid), valid);
  const std::string fffd = "\xEF\xBF\xBD";
  // As Python's bytes.decode("utf-8", "replace") (and HF tokenizers' decode): one U+FFFD per
  // maximal subpart of an ill-formed sequence.
  const auto times = [&](int n) {
    std::string r;
    for (int i = 0; i < n; ++i) r += fffd;
    return r;
  };
  EXPECT_EQ(utf8_sanitize("x\x80y"), "x" + fffd + "y");  // stray continuation
  EXPECT_EQ(utf8_sanitize("x\xE4\xB8"), "x" + fffd);     // truncated 3-byte sequence: one
  EXPECT_EQ(utf8_sanitize("\xE2\x82"
                          "A"),
            fffd + "A");                                        // broken off before 'A'
  EXPECT_EQ(utf8_sanitize("\xF0\x9F\x98"), fffd);               // truncated 4-byte sequence
  EXPECT_EQ(utf8_sanitize("\xC0\x80"), times(2));               // overlong NUL: C0 never starts one
  EXPECT_EQ(utf8_sanitize("\xC0\x95M"), times(2) + "M");        // seen from a byte-level model
  EXPECT_EQ(utf8_sanitize("\xED\xA0\x80"), times(3));           // UTF-16 surrogate
  EXPECT_EQ(utf8_sanitize("\xF4\x90\x80\x80"), times(4));       // past U+10FFFF
  EXPECT_EQ(utf8_sanitize("\xF8z"), fffd + "z");                // no such lead byte
  EXPECT_EQ(utf8_sanitize("\xC3\xC3\xA9"), fffd + "\xC3\xA9");  // a lead cut short, then a whole one
}

TEST(Tokenizer, LoadNamesTheMissingFileOrFolder) {
  testing::TempDir dir;
  try {
    tokenizer_load(dir.path.string());
    FAIL() << "empty folder accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json or tokenizer.model"), std::string::npos);
  }
  EXPECT_THROW(tokenizer_load(dir / "absent.json"), std::runtime_error);
  std::ofstream(dir / "tokenizer.json") << "{not json";
  try {
    tokenizer_load(dir.path.string());
    FAIL() << "malformed json accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace kmoe
