// Task-specific answer extraction f(.) (METHOD.md §1.1): turns a generated reply into the
// prediction compared with the gold answer, both normalised the same way, so `correct` is a
// plain string equality. Formats: choice (letter), yesno, number (the number after the last
// "answer is", else the last number; "1,234" -> "1234", "3.50" -> "3.5"), exact (the first
// non-empty line, trimmed), regex (the first capture group of the first match, else the match).
#pragma once
#include <string>

namespace kmoe {

enum class AnswerFormat { choice, yesno, number, exact, regex };

AnswerFormat answer_format_parse(const std::string& name);  // throws for an unknown name
const char* answer_format_name(AnswerFormat format);

struct AnswerSpec {
  AnswerFormat format = AnswerFormat::exact;
  std::string regex;      // for AnswerFormat::regex (PCRE2 syntax)
  int64_t n_choices = 0;  // for AnswerFormat::choice: letters A.. up to this many are valid
};

// The prediction extracted from a generated reply; "" when none can be found.
std::string answer_extract(const AnswerSpec& spec, const std::string& generated);
// The gold answer normalised like predictions; throws std::invalid_argument when it is not
// an answer of this format (e.g. "maybe" for yesno).
std::string answer_normalize_gold(const AnswerSpec& spec, const std::string& gold);
// "3.50" -> "3.5", "1,234" -> "1234", "-0.0" -> "0"; "" when `text` holds no number.
std::string answer_normalize_number(const std::string& text);

}  // namespace kmoe
