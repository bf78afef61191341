// Reading open-data JSONL and K-shot files: both schemas, text joining, file:line errors.
#include "data/text/open_corpus.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

std::string write_file(const testing::TempDir& dir, const std::string& name, const std::string& text) {
  const std::string p = dir / name;
  std::ofstream(p) << text;
  return p;
}

TEST(OpenCorpus, ReadsAlpacaAndChatRowsWithFileAndLine) {
  testing::TempDir dir;
  const auto a = write_file(dir, "a.jsonl",
                            R"({"instruction": "Add", "input": "2 and 3", "output": "5"})"
                            "\n\n"
                            R"({"instruction": "Say hi", "input": "", "output": "hi"})"
                            "\n");
  const auto b =
      write_file(dir, "b.jsonl",
                 R"({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]})"
                 "\r\n");
  const auto rows = open_corpus_read({a, b});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].text, "Add\n2 and 3\n5");
  EXPECT_EQ(rows[0].line, 1);
  EXPECT_EQ(rows[1].text, "Say hi\nhi");  // empty input left out
  EXPECT_EQ(rows[1].line, 3);             // the blank line 2 is not a row
  EXPECT_EQ(rows[1].id, "0:3");
  EXPECT_EQ(rows[2].file, 1);
  EXPECT_EQ(rows[2].text, "Q?\nA.");
  EXPECT_EQ(rows[2].id, "1:1");
}

TEST(OpenCorpus, InvalidJsonNamesFileAndLine) {
  testing::TempDir dir;
  const auto a = write_file(dir, "a.jsonl",
                            R"({"instruction": "x", "output": "y"})"
                            "\n{not json\n");
  const std::string e = error_of([&] { open_corpus_read({a}); });
  EXPECT_NE(e.find(a + ":2: invalid JSON"), std::string::npos) << e;
}

TEST(OpenCorpus, NeitherSchemaNamesFileAndLine) {
  testing::TempDir dir;
  const auto a = write_file(dir, "a.jsonl",
                            R"({"text": "plain"})"
                            "\n");
  const std::string e = error_of([&] { open_corpus_read({a}); });
  EXPECT_NE(e.find(a + ":1: neither an Alpaca record"), std::string::npos) << e;
}

TEST(OpenCorpus, EmptyTextNamesFileAndLine) {
  testing::TempDir dir;
  const auto a = write_file(dir, "a.jsonl",
                            R"({"instruction": "x", "output": "y"})"
                            "\n"
                            R"({"instruction": " ", "input": "", "output": ""})"
                            "\n");
  const std::string e = error_of([&] { open_corpus_read({a}); });
  EXPECT_NE(e.find(a + ":2: empty text"), std::string::npos) << e;
}

TEST(OpenCorpus, NonStringFieldNamesFileAndLine) {
  testing::TempDir dir;
  const auto a = write_file(dir, "a.jsonl",
                            R"({"instruction": ["x"], "output": "y"})"
                            "\n");
  const std::string e = error_of([&] { open_corpus_read({a}); });
  EXPECT_NE(e.find(a + ":1: field 'instruction' must be a string"), std::string::npos) << e;
}

TEST(OpenCorpus, KshotTextIsQuestionThenAnswer) {
  testing::TempDir dir;
  const auto k = write_file(dir, "k.jsonl",
                            R"({"id": "q1", "question": "2+2?", "choices": ["3", "4"], "answer": "4"})"
                            "\n"
                            R"({"id": "q2", "instruction": "Sum", "input": "1 1", "answer": 2})"
                            "\n");
  const auto rows = kshot_read(k);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "q1");
  EXPECT_EQ(rows[0].text, "2+2?\n4");
  EXPECT_EQ(rows[1].text, "Sum\n1 1\n2");
}

TEST(OpenCorpus, KshotWithoutAnswerNamesFileAndLine) {
  testing::TempDir dir;
  const auto k = write_file(dir, "k.jsonl",
                            R"({"id": "q1", "question": "2+2?"})"
                            "\n");
  const std::string e = error_of([&] { kshot_read(k); });
  EXPECT_NE(e.find(k + ":1: a K-shot example needs an 'answer'"), std::string::npos) << e;
}

TEST(OpenCorpus, LinesReadReturnsRawRecordsAndNamesMissingLine) {
  testing::TempDir dir;
  const auto a = write_file(dir, "a.jsonl", "l1\nl2\nl3\n");
  EXPECT_EQ(jsonl_lines_read(a, {1, 3}), (std::vector<std::string>{"l1", "l3"}));
  const std::string e = error_of([&] { jsonl_lines_read(a, {2, 9}); });
  EXPECT_NE(e.find(a + ":9: no such line"), std::string::npos) << e;
}

}  // namespace
}  // namespace kmoe
