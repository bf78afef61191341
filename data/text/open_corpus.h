// Open-data JSONL (the pool Sim-Div selects from) and the K-shot file, read as the texts the
// encoder embeds. A row remembers its file index and 1-based line so every selected sample
// maps back to the original record; blank lines are skipped, not rows. The text of an
// open record is its parts joined by "\n": Alpaca instruction, input, output (empty parts
// left out), or a chat record's message contents in order. A K-shot example's text is its
// question (or instruction "\n" input) then "\n" then its answer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kmoe {

struct CorpusRow {
  int64_t file = 0;  // index into the file list
  int64_t line = 0;  // 1-based line number in that file
  std::string id;    // "file_index:line" for open rows, the example's `id` for K-shot rows
  std::string text;  // what the encoder embeds
};

// The text to embed of one open record; `where` ("FILE:LINE") prefixes every error.
std::string open_record_text(const nlohmann::json& record, const std::string& where);
// The text to embed of one K-shot example (question + answer).
std::string kshot_record_text(const nlohmann::json& record, const std::string& where);

// All rows of the open-data files, in file order then line order. Throws "FILE:LINE: ..."
// for invalid JSON, a record of neither schema, or an empty text.
std::vector<CorpusRow> open_corpus_read(const std::vector<std::string>& files);
// The rows of a K-shot JSONL file (file index 0).
std::vector<CorpusRow> kshot_read(const std::string& path);

// The raw text of the given 1-based lines of one file (for copying selected records out),
// in the order of `lines` (which must be sorted ascending). Throws naming a missing line.
std::vector<std::string> jsonl_lines_read(const std::string& path, const std::vector<int64_t>& lines);

}  // namespace kmoe
