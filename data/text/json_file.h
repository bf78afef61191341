// Reading a whole file as one JSON document (config.json, tokenizer_config.json, suite.json,
// a sentence-transformers folder's module files) with one set of errors naming the path. The
// model readers, the tokenizers, the encoder and the demo each had a copy of this.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace kmoe {

// Throws std::runtime_error "PATH: cannot open" when the file cannot be opened, and
// "PATH: not valid JSON: <the parser's message, with line and column>" when it does not parse.
nlohmann::json json_file_read(const std::string& path);

}  // namespace kmoe
