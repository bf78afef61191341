// K-shot task examples from JSONL: one object per line with `id`, `question` (or
// `instruction` + optional `input`), optional `choices` (strings, lettered A, B, ... in
// order), `answer` and optional `rationale`. A multiple-choice answer may be given as the
// letter or as the choice text; it is stored as the letter. Every error names file:line.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <vector>

namespace kmoe {

struct KshotExample {
  std::string id;
  std::string instruction;           // `question`, or `instruction`
  std::string input;                 // `input` ("" when absent)
  std::vector<std::string> choices;  // empty: not multiple choice
  std::string answer;                // the letter for multiple choice, else the text as given
  std::string rationale;             // "" when absent
  int64_t line = 0;                  // 1-based line in the file
};

// Parses JSONL text; `path` names it in errors ("path:line: ..."). Blank lines are skipped.
std::vector<KshotExample> kshot_parse(const std::string& text, const std::string& path);
std::vector<KshotExample> kshot_load(const std::string& path);

// One record, already parsed from line `line`; `where` ("path:line") prefixes its errors.
// With `ids`, an id already in it is an error, and the record's id is added.
KshotExample kshot_record_parse(const nlohmann::json& obj, int64_t line, const std::string& where,
                                std::set<std::string>* ids = nullptr);

// "A", "B", ... for choice index 0, 1, ...
std::string kshot_choice_letter(size_t index);

}  // namespace kmoe
