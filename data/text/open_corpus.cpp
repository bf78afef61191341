// See open_corpus.h. Files are read by data/text/jsonl.h, so a line number is exactly what
// an editor shows and a trailing '\r' (CRLF files) is dropped before parsing.
#include "data/text/open_corpus.h"

#include <fstream>
#include <stdexcept>

#include "data/text/input_file.h"
#include "data/text/jsonl.h"

namespace kmoe {

namespace {

using nlohmann::json;

std::string field_text(const json& record, const char* key, const std::string& where) {
  if (!record.contains(key) || record[key].is_null()) return "";
  const json& v = record[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw std::runtime_error(where + ": field '" + key + "' must be a string");
}

std::string join_nonempty(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += "\n";
    out += p;
  }
  return out;
}

bool blank(const std::string& line) {
  return line.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace

std::string open_record_text(const json& record, const std::string& where) {
  std::string text;
  if (record.contains("messages")) {
    const json& messages = record["messages"];
    if (!messages.is_array()) throw std::runtime_error(where + ": 'messages' must be an array");
    std::vector<std::string> parts;
    for (const auto& m : messages) {
      if (!m.is_object() || !m.contains("content")) {
        throw std::runtime_error(where + ": each message needs a 'role' and a 'content'");
      }
      parts.push_back(field_text(m, "content", where));
    }
    text = join_nonempty(parts);
  } else if (record.contains("instruction") || record.contains("output")) {
    text = join_nonempty({field_text(record, "instruction", where), field_text(record, "input", where),
                          field_text(record, "output", where)});
  } else {
    throw std::runtime_error(where +
                             ": neither an Alpaca record (instruction/input/output) nor a chat record (messages)");
  }
  if (blank(text)) throw std::runtime_error(where + ": empty text");
  return text;
}

std::string kshot_record_text(const json& record, const std::string& where) {
  std::string question = field_text(record, "question", where);
  if (question.empty()) {
    question = join_nonempty({field_text(record, "instruction", where), field_text(record, "input", where)});
  }
  if (question.empty()) throw std::runtime_error(where + ": a K-shot example needs 'question' or 'instruction'");
  if (!record.contains("answer")) throw std::runtime_error(where + ": a K-shot example needs an 'answer'");
  const std::string text = join_nonempty({question, field_text(record, "answer", where)});
  if (blank(text)) throw std::runtime_error(where + ": empty text");
  return text;
}

std::vector<CorpusRow> open_corpus_read(const std::vector<std::string>& files) {
  std::vector<CorpusRow> rows;
  for (size_t f = 0; f < files.size(); ++f) {
    jsonl_read(files[f], "a JSONL file", [&](int64_t line, const json& record) {
      rows.push_back({static_cast<int64_t>(f), line, std::to_string(f) + ":" + std::to_string(line),
                      open_record_text(record, jsonl_where(files[f], line))});
    });
  }
  return rows;
}

std::vector<CorpusRow> kshot_read(const std::string& path) {
  std::vector<CorpusRow> rows;
  jsonl_read(path, "a JSONL file", [&](int64_t line, const json& record) {
    const std::string where = jsonl_where(path, line);
    const std::string id = record.contains("id") ? field_text(record, "id", where) : std::to_string(line);
    rows.push_back({0, line, id, kshot_record_text(record, where)});
  });
  if (rows.empty()) throw std::runtime_error(path + ": no K-shot examples");
  return rows;
}

std::vector<std::string> jsonl_lines_read(const std::string& path, const std::vector<int64_t>& lines) {
  std::ifstream in = input_file_open(path, "a JSONL file");
  std::vector<std::string> out;
  out.reserve(lines.size());
  std::string line;
  int64_t n = 0;
  for (const int64_t want : lines) {
    while (n < want && std::getline(in, line)) ++n;
    if (n != want) throw std::runtime_error(path + ":" + std::to_string(want) + ": no such line (file changed?)");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

}  // namespace kmoe
