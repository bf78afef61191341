#include "data/text/kshot.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"

namespace kmoe {
namespace {

// The message of the exception kshot_parse throws for `text`, or "" if none.
std::string parse_error(const std::string& text) {
  try {
    kshot_parse(text, "k.jsonl");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(Kshot, ParsesEveryFieldAndMapsChoiceTextToLetter) {
  const auto ex = kshot_parse(
      "{\"id\": \"q1\", \"question\": \"Pick\", \"choices\": [\"red\", \"blue\"], \"answer\": \"blue\", "
      "\"rationale\": \"r\"}\n\n"
      "{\"id\": 7, \"instruction\": \"Add\", \"input\": \"1 2\", \"answer\": 3}\n",
      "k.jsonl");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].id, "q1");
  EXPECT_EQ(ex[0].answer, "B");
  EXPECT_EQ(ex[0].choices, (std::vector<std::string>{"red", "blue"}));
  EXPECT_EQ(ex[0].rationale, "r");
  EXPECT_EQ(ex[1].id, "7");
  EXPECT_EQ(ex[1].instruction, "Add");
  EXPECT_EQ(ex[1].input, "1 2");
  EXPECT_EQ(ex[1].answer, "3");
  EXPECT_EQ(ex[1].line, 3);
}

TEST(Kshot, BadLinesNameFileAndLine) {
  const std::string ok = "{\"id\": \"a\", \"question\": \"q\", \"answer\": \"x\"}\n";
  EXPECT_NE(parse_error(ok + "{not json\n").find("k.jsonl:2: invalid JSON"), std::string::npos);
  EXPECT_NE(parse_error(ok + "{\"id\": \"b\", \"question\": \"q\"}\n").find("k.jsonl:2: missing answer"),
            std::string::npos);
  EXPECT_NE(parse_error(ok + "{\"id\": \"b\", \"answer\": \"q\"}\n").find("k.jsonl:2: missing question"),
            std::string::npos);
  EXPECT_NE(parse_error(ok + "{\"id\": \"b\", \"question\": \"q\", \"choices\": [\"x\", \"y\"], \"answer\": \"C\"}")
                .find("k.jsonl:2: answer 'C' is neither a choice letter A-B"),
            std::string::npos);
  EXPECT_NE(parse_error(ok + ok).find("k.jsonl:2: duplicate id 'a'"), std::string::npos);
  EXPECT_NE(parse_error(ok + "[1, 2]\n").find("k.jsonl:2: a line must be a JSON object"), std::string::npos);
  EXPECT_NE(parse_error("\n").find("k.jsonl: no examples"), std::string::npos);
}

TEST(Kshot, LoadReadsAFileAndNamesAMissingOne) {
  testing::TempDir dir;
  std::ofstream(dir / "k.jsonl") << "{\"question\": \"q\", \"answer\": \"x\"}\n";
  const auto ex = kshot_load(dir / "k.jsonl");
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].id, "1");  // the line number when no id is given
  EXPECT_THROW(kshot_load(dir / "absent.jsonl"), std::runtime_error);
}

}  // namespace
}  // namespace kmoe
