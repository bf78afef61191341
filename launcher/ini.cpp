// See ini.h.
#include "launcher/ini.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <utility>

#include "runtime/usage_error.h"

namespace kmoe {

namespace {

std::string ini_trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::vector<IniEntry> ini_parse(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw UsageError("config file '" + path + "' is a folder");
  std::ifstream in(path);
  if (!in) throw UsageError("cannot open config file '" + path + "'");
  std::vector<IniEntry> out;
  std::map<std::pair<std::string, std::string>, int> seen;  // (section, key) -> line
  std::string raw, section;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    if (line_no == 1 && raw.rfind("\xEF\xBB\xBF", 0) == 0) raw = raw.substr(3);  // a UTF-8 byte-order mark
    const std::string line = ini_trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        throw UsageError(path + ":" + std::to_string(line_no) + ": malformed section header '" + line + "'");
      }
      section = ini_trim(line.substr(1, line.size() - 2));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos || ini_trim(line.substr(0, eq)).empty()) {
      throw UsageError(path + ":" + std::to_string(line_no) + ": expected 'key = value', got '" + line + "'");
    }
    const std::string key = ini_trim(line.substr(0, eq));
    const auto [it, fresh] = seen.emplace(std::make_pair(section, key), line_no);
    if (!fresh)
      throw UsageError(path + ":" + std::to_string(line_no) + ": '" + key + "' is set twice" +
                       (section.empty() ? "" : " in [" + section + "]") + " (first on line " +
                       std::to_string(it->second) + ")");
    out.push_back({section, key, ini_trim(line.substr(eq + 1)), line_no});
  }
  return out;
}

}  // namespace kmoe
