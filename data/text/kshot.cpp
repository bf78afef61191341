// See kshot.h. Parsing is strict: a K-shot set is small and hand-written, so a typo is far
// more likely than an intended oddity, and silently dropping a line would change K.
#include "data/text/kshot.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "data/text/input_file.h"
#include "data/text/jsonl.h"

namespace kmoe {

namespace {

std::string string_field(const nlohmann::json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  throw std::invalid_argument(where + ": field '" + key + "' must be a string");
}

}  // namespace

std::string kshot_choice_letter(size_t index) {
  if (index >= 26) throw std::invalid_argument("kshot: more than 26 choices");
  return std::string(1, static_cast<char>('A' + index));
}

KshotExample kshot_record_parse(const nlohmann::json& obj, int64_t line, const std::string& where,
                                std::set<std::string>* ids) {
  KshotExample ex;
  ex.line = line;
  ex.id = string_field(obj, "id", where);
  if (ex.id.empty()) ex.id = std::to_string(line);
  if (ids && !ids->insert(ex.id).second) throw std::invalid_argument(where + ": duplicate id '" + ex.id + "'");
  ex.instruction = string_field(obj, "question", where);
  if (ex.instruction.empty()) ex.instruction = string_field(obj, "instruction", where);
  if (ex.instruction.empty()) throw std::invalid_argument(where + ": missing question (or instruction)");
  ex.input = string_field(obj, "input", where);
  ex.rationale = string_field(obj, "rationale", where);
  if (obj.contains("choices")) {
    const auto& c = obj["choices"];
    if (!c.is_array() || c.empty()) throw std::invalid_argument(where + ": choices must be a non-empty list");
    if (c.size() > 26) throw std::invalid_argument(where + ": more than 26 choices");
    for (const auto& s : c) {
      if (!s.is_string()) throw std::invalid_argument(where + ": every choice must be a string");
      ex.choices.push_back(s.get<std::string>());
    }
  }
  ex.answer = string_field(obj, "answer", where);
  if (ex.answer.empty()) throw std::invalid_argument(where + ": missing answer");
  if (!ex.choices.empty()) {
    std::string letter;
    for (size_t i = 0; i < ex.choices.size(); ++i) {
      if (ex.answer == kshot_choice_letter(i) || ex.answer == ex.choices[i]) {
        letter = kshot_choice_letter(i);
        break;
      }
    }
    if (letter.empty()) {
      throw std::invalid_argument(where + ": answer '" + ex.answer + "' is neither a choice letter A-" +
                                  kshot_choice_letter(ex.choices.size() - 1) + " nor a choice's text");
    }
    ex.answer = letter;
  }
  return ex;
}

std::vector<KshotExample> kshot_parse(const std::string& text, const std::string& path) {
  std::vector<KshotExample> out;
  std::set<std::string> ids;
  std::istringstream in(text);
  jsonl_read(in, path, [&](int64_t line, const nlohmann::json& obj) {
    out.push_back(kshot_record_parse(obj, line, jsonl_where(path, line), &ids));
  });
  if (out.empty()) throw std::invalid_argument(path + ": no examples");
  return out;
}

std::vector<KshotExample> kshot_load(const std::string& path) {
  std::ifstream f = input_file_open(path, "the K-shot file");
  std::stringstream ss;
  ss << f.rdbuf();
  return kshot_parse(ss.str(), path);
}

}  // namespace kmoe
