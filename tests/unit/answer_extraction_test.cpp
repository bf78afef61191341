#include "evaluator/answer_extraction.h"

#include <gtest/gtest.h>

namespace kmoe {
namespace {

AnswerSpec spec(AnswerFormat f, int64_t n_choices = 0, std::string regex = "") {
  AnswerSpec s;
  s.format = f;
  s.n_choices = n_choices;
  s.regex = std::move(regex);
  return s;
}

TEST(AnswerExtraction, ChoicePrefersStatedAnswerThenFirstValidLetter) {
  const auto s = spec(AnswerFormat::choice, 4);
  EXPECT_EQ(answer_extract(s, "I think A is wrong, so the answer is (C)."), "C");
  EXPECT_EQ(answer_extract(s, "B. stone"), "B");
  EXPECT_EQ(answer_extract(s, "A"), "A");
  EXPECT_EQ(answer_extract(s, "E is not an option, Dog"), "");  // E outside A-D; D inside a word
  EXPECT_EQ(answer_normalize_gold(s, " B "), "B");
  EXPECT_THROW(answer_normalize_gold(s, "E"), std::invalid_argument);
}

TEST(AnswerExtraction, YesNo) {
  const auto s = spec(AnswerFormat::yesno);
  EXPECT_EQ(answer_extract(s, "Yes, because ..."), "yes");
  EXPECT_EQ(answer_extract(s, "It is false."), "no");
  EXPECT_EQ(answer_extract(s, "Nothing here"), "");  // "no" inside a word is not an answer
  EXPECT_EQ(answer_normalize_gold(s, "True"), "yes");
  EXPECT_THROW(answer_normalize_gold(s, "maybe"), std::invalid_argument);
}

TEST(AnswerExtraction, NumberTakesFinalOrStatedNumberNormalised) {
  const auto s = spec(AnswerFormat::number);
  EXPECT_EQ(answer_extract(s, "3 apples and 4 pears make 7"), "7");
  EXPECT_EQ(answer_extract(s, "The answer is 1,234. Check: 5"), "1234");
  EXPECT_EQ(answer_extract(s, "cost 3.50 dollars"), "3.5");
  EXPECT_EQ(answer_extract(s, "no digits"), "");
  EXPECT_EQ(answer_normalize_number("-0.0"), "0");
  EXPECT_EQ(answer_normalize_number("007"), "7");
  EXPECT_EQ(answer_normalize_number("0.250"), "0.25");
  EXPECT_EQ(answer_normalize_number("10.00"), "10");
  EXPECT_EQ(answer_normalize_gold(s, "1,000"), "1000");
  EXPECT_THROW(answer_normalize_gold(s, "many"), std::invalid_argument);
}

TEST(AnswerExtraction, ExactTakesFirstNonEmptyLineTrimmed) {
  const auto s = spec(AnswerFormat::exact);
  EXPECT_EQ(answer_extract(s, "\n  Paris \nmore text"), "Paris");
  EXPECT_EQ(answer_normalize_gold(s, " Paris\n"), "Paris");
}

TEST(AnswerExtraction, RegexFirstGroupOfFirstMatch) {
  EXPECT_EQ(answer_extract(spec(AnswerFormat::regex, 0, "#### (\\w+)"), "work... #### forty #### two"), "forty");
  EXPECT_EQ(answer_extract(spec(AnswerFormat::regex, 0, "[0-9]+"), "a 12 b"), "12");  // no group: the match
  EXPECT_EQ(answer_extract(spec(AnswerFormat::regex, 0, "x(\\d)"), "none"), "");
  EXPECT_THROW(answer_extract(spec(AnswerFormat::regex, 0, "(unclosed"), "t"), std::invalid_argument);
  EXPECT_THROW(answer_format_parse("letters"), std::invalid_argument);
  EXPECT_EQ(answer_format_parse("number"), AnswerFormat::number);
}

}  // namespace
}  // namespace kmoe
