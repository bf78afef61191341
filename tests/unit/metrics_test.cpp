#include "evaluator/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kmoe {
namespace {

TEST(MacroF1, PerfectPredictionsScoreOne) {
  EXPECT_DOUBLE_EQ(macro_f1({"A", "B", "C", "A"}, {"A", "B", "C", "A"}), 1.0);
}

TEST(MacroF1, MeanOfPerLabelF1) {
  // yes: tp 1, fp 0, fn 1 -> 2/3; no: tp 2, fp 1, fn 0 -> 4/5
  EXPECT_NEAR(macro_f1({"yes", "yes", "no", "no"}, {"yes", "no", "no", "no"}), (2.0 / 3 + 4.0 / 5) / 2, 1e-12);
}

TEST(MacroF1, GoldLabelNeverPredictedScoresZeroAndCounts) {
  // A: tp 2, fp 1, fn 0 -> 4/5; B: tp 0, fp 1, fn 1 -> 0; C (never predicted): fn 1 -> 0
  EXPECT_NEAR(macro_f1({"A", "A", "B", "C"}, {"A", "A", "A", "B"}), 0.8 / 3, 1e-12);
}

TEST(MacroF1, PredictionOutsideTheLabelSetIsWrongButNoFalsePositive) {
  // "" and "maybe" are no label: each only misses its gold. yes: fn 1 -> 0; no: tp 1, fn 1 -> 2/3
  EXPECT_NEAR(macro_f1({"yes", "no", "no"}, {"", "maybe", "no"}), 1.0 / 3, 1e-12);
  // A letter that is never gold is no label either: A 0, B 1 -> 0.5; predicting B instead
  // would also cost B's precision: A 0, B 2/3 -> 1/3.
  EXPECT_NEAR(macro_f1({"A", "B"}, {"D", "B"}), 0.5, 1e-12);
  EXPECT_NEAR(macro_f1({"A", "B"}, {"B", "B"}), 1.0 / 3, 1e-12);
}

TEST(MacroF1, EmptyIsNanAndMismatchThrows) {
  EXPECT_TRUE(std::isnan(macro_f1({}, {})));
  EXPECT_THROW(macro_f1({"A"}, {"A", "B"}), std::invalid_argument);
}

TEST(MacroF1, ClassificationFormats) {
  EXPECT_TRUE(answer_format_is_classification(AnswerFormat::choice));
  EXPECT_TRUE(answer_format_is_classification(AnswerFormat::yesno));
  EXPECT_FALSE(answer_format_is_classification(AnswerFormat::number));
  EXPECT_FALSE(answer_format_is_classification(AnswerFormat::exact));
  EXPECT_FALSE(answer_format_is_classification(AnswerFormat::regex));
}

}  // namespace
}  // namespace kmoe
