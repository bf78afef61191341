// Task metrics over a test set's predictions (METHOD.md §1.5): accuracy is the mean of the
// per-example `correct` flags scoring_run gives; macro-F1 is for classification formats
// (choice, yesno). The label set is the set of gold answers that occur, so a class that is
// never gold does not drag the mean down; a prediction outside it (no answer found, "maybe",
// a letter that is never gold) is simply wrong: it counts against its example's gold label.
#pragma once
#include <string>
#include <vector>

#include "evaluator/answer_extraction.h"

namespace kmoe {

// Whether macro-F1 is defined for a format: choice and yesno.
bool answer_format_is_classification(AnswerFormat format);

// Per label c of the gold set: F1_c = 2·tp / (2·tp + fp + fn), where tp counts examples with
// gold = prediction = c, fp predictions of c on examples of another gold, fn examples of gold
// c predicted otherwise. Returns the mean over labels; NaN for an empty set. gold and
// predicted are aligned, normalised as answer_extraction does. Throws on a size mismatch.
double macro_f1(const std::vector<std::string>& gold, const std::vector<std::string>& predicted);

}  // namespace kmoe
