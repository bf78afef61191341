// See jsonl.h. Lines are read with std::getline so a line number is exactly what an editor
// shows.
#include "data/text/jsonl.h"

#include <fstream>
#include <stdexcept>

#include "data/text/input_file.h"

namespace kmoe {

std::string jsonl_where(const std::string& path, int64_t line) {
  return path + ":" + std::to_string(line);
}

void jsonl_read(std::istream& in, const std::string& path, const JsonlRow& row) {
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::invalid_argument(jsonl_where(path, line) + ": invalid JSON: " + e.what());
    }
    if (!record.is_object()) throw std::invalid_argument(jsonl_where(path, line) + ": a line must be a JSON object");
    row(line, record);
  }
}

void jsonl_read(const std::string& path, const std::string& what, const JsonlRow& row) {
  std::ifstream in = input_file_open(path, what);
  jsonl_read(in, path, row);
}

}  // namespace kmoe
