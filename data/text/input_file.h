// Opening a text input (JSONL data, K-shot sets, corpora) with one set of errors: a missing
// path, a folder or an unreadable file is an error naming the path and what it should have
// been. (A folder opens as an empty stream on Linux, which read as "no records" before.)
#pragma once

#include <fstream>
#include <string>

namespace kmoe {

// `what` says what the file is for, e.g. "the K-shot file".
std::ifstream input_file_open(const std::string& path, const std::string& what);

}  // namespace kmoe
