// Reading JSONL (one JSON object a line: K-shot sets, corpora, SFT data) with one set of
// rules and errors: lines are numbered as an editor shows them, blank lines are skipped, a
// trailing '\r' (CRLF files) is dropped, and a line that is not a JSON object is an error
// "PATH:LINE: ...". K-shot parsing, the open corpus, SFT data and select-data each had this
// loop of their own.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>

namespace kmoe {

// Called for each record with its 1-based line number.
using JsonlRow = std::function<void(int64_t line, const nlohmann::json& record)>;

// Reads the file at `path`, opened by input_file_open(path, what) (`what` says what the file
// is for, e.g. "the K-shot file"). Throws std::invalid_argument "PATH:LINE: invalid JSON:
// <the parser's message>" or "PATH:LINE: a line must be a JSON object"; whatever `row`
// throws passes through.
void jsonl_read(const std::string& path, const std::string& what, const JsonlRow& row);

// The same over a stream already open; `path` names it in errors.
void jsonl_read(std::istream& in, const std::string& path, const JsonlRow& row);

// "PATH:LINE", as errors about a record name it.
std::string jsonl_where(const std::string& path, int64_t line);

}  // namespace kmoe
