// data/tokenizers/wordpiece_tokenizer: greedy longest-match with ## continuations, [UNK] for words
// with an unmatched piece or too many characters, BertNormalizer (accents, case, CJK,
// control characters), punctuation split, special tokens in the text, and load errors.
#include "data/tokenizers/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "bert_test_model.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

std::unique_ptr<WordpieceTokenizer> tiny(WordpieceOptions options = {}) {
  return std::make_unique<WordpieceTokenizer>(testing::tiny_bert_vocab(), options, "tiny");
}

TEST(WordpieceTokenizer, GreedyLongestMatchWithContinuations) {
  const auto tok = tiny();
  // un ##aff ##able; "cats" -> cat ##s
  EXPECT_EQ(tok->encode("unaffable cats", false), (std::vector<int32_t>{10, 11, 12, 6, 22}));
  EXPECT_EQ(tok->encode("the cat", true), (std::vector<int32_t>{2, 5, 6, 3}));
}

TEST(WordpieceTokenizer, UnmatchedPieceMakesTheWholeWordUnknown) {
  const auto tok = tiny();
  EXPECT_EQ(tok->encode("unaffz cat", false), (std::vector<int32_t>{1, 6}));
}

TEST(WordpieceTokenizer, OverlongWordIsUnknown) {
  WordpieceOptions o;
  o.max_input_chars_per_word = 3;
  const auto tok = tiny(o);
  EXPECT_EQ(tok->encode("cat cats", false), (std::vector<int32_t>{6, 1}));
}

TEST(WordpieceTokenizer, NormalizerStripsAccentsLowercasesAndSpacesCjk) {
  const auto tok = tiny();
  EXPECT_EQ(tok->normalize("Café\tÉCOLE\x01中文"), "cafe ecole 中  文 ");
  EXPECT_EQ(tok->encode("CAFÉS", false), (std::vector<int32_t>{21, 22}));
  EXPECT_EQ(tok->encode("中文", false), (std::vector<int32_t>{23, 24}));
  WordpieceOptions cased;
  cased.lowercase = cased.strip_accents = false;
  EXPECT_EQ(tiny(cased)->normalize("Café"), "Café");
}

TEST(WordpieceTokenizer, PunctuationIsSplitAndWhitespaceDropped) {
  const auto tok = tiny();
  EXPECT_EQ(tok->pre_tokenize("hello,world!  the"), (std::vector<std::string>{"hello", ",", "world", "!", "the"}));
}

TEST(WordpieceTokenizer, SpecialTokensInTextAreMatchedAndDecodeJoinsPieces) {
  const auto tok = tiny();
  const auto ids = tok->encode("the[SEP]cat", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 3, 6}));
  EXPECT_EQ(tok->decode({2, 10, 11, 12, 6, 22, 18, 3}), "[CLS] unaffable cats. [SEP]");
  EXPECT_EQ(tok->decode({2, 6, 3}, true), "cat");
}

TEST(WordpieceTokenizer, EmptyTextIsClsSep) {
  EXPECT_EQ(tiny()->encode("", true), (std::vector<int32_t>{2, 3}));
}

TEST(WordpieceTokenizer, FolderWithoutVocabIsNamed) {
  testing::TempDir dir;
  try {
    WordpieceTokenizer::from_folder(dir.path.string());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.path.string()), std::string::npos) << e.what();
  }
}

TEST(WordpieceTokenizer, VocabWithoutUnkIsRejected) {
  EXPECT_THROW(WordpieceTokenizer({"[CLS]", "[SEP]", "a"}, {}, "v"), std::runtime_error);
}

TEST(WordpieceTokenizer, TokenizerJsonWithOtherNormalizerIsNamed) {
  testing::TempDir dir;
  std::ofstream(dir / "tokenizer.json")
      << R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2}},
             "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "BertPreTokenizer"}})";
  try {
    WordpieceTokenizer::from_json_file(dir / "tokenizer.json");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: normalizer type NFC"), std::string::npos) << e.what();
  }
}

TEST(WordpieceTokenizer, VocabTxtFolderReadsDoLowerCase) {
  testing::TempDir dir;
  testing::tiny_bert_folder_write(dir.path.string());
  std::ofstream(dir / "tokenizer_config.json") << R"({"do_lower_case": false})";
  const auto tok = WordpieceTokenizer::from_folder(dir.path.string());
  EXPECT_EQ(tok->encode("Cat cat", false), (std::vector<int32_t>{1, 6}));
}

}  // namespace
}  // namespace kmoe
