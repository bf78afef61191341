// Reading a whole file as one JSON document (config.json, tokenizer_config.json, suite.json,
// a sentence-transformers folder's module files) with one set of errors naming the path. The
// model readers, the tokenizers, the encoder and the demo each had a copy of this.
#pragma once

#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>

namespace kmoe {

// Throws std::runtime_error "PATH: cannot open" when the file cannot be opened, and
// "PATH: not valid JSON: <the parser's message, with line and column>" when it does not parse.
nlohmann::json json_file_read(const std::string& path);

// The largest token id a tokenizer file may use, plus one: vocabularies are dense, the largest
// real ones about 2^18, and a reader allocates a slot per id up to the largest.
inline constexpr int64_t kMaxTokenId = int64_t{1} << 24;
// `v` as a token id: a JSON integer in [0, kMaxTokenId). Throws std::runtime_error
// "WHAT: ..." for anything else (a float such as 2.9e36, a string, a negative or huge id),
// never converting out of range.
int32_t json_token_id(const nlohmann::json& v, const std::string& what);

}  // namespace kmoe
