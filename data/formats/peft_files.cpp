// See peft_files.h.
#include "data/formats/peft_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "data/formats/safetensors.h"
#include "data/store/folder_commit.h"

namespace kmoe::peft_files {

using nlohmann::json;

void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument(path + ": " + what);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json parse_object(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    const size_t byte = std::min<size_t>(e.byte, text.size());
    const int64_t line = 1 + std::count(text.begin(), text.begin() + (byte ? byte - 1 : 0), '\n');
    fail(path, "bad JSON at line " + std::to_string(line) + ": " + e.what());
  }
  if (!j.is_object()) fail(path, "is not a JSON object");
  return j;
}

int64_t get_int(const json& j, const std::string& key, int64_t fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_integer()) fail(path, "'" + key + "' must be an integer, got " + j[key].dump());
  return j[key].get<int64_t>();
}

double get_number(const json& j, const std::string& key, double fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) fail(path, "'" + key + "' must be a number, got " + j[key].dump());
  return j[key].get<double>();
}

bool get_bool(const json& j, const std::string& key, bool fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail(path, "'" + key + "' must be true or false, got " + j[key].dump());
  return j[key].get<bool>();
}

std::string get_string(const json& j, const std::string& key, const std::string& fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) fail(path, "'" + key + "' must be a string, got " + j[key].dump());
  return j[key].get<std::string>();
}

void write_folder(const std::string& dir, const std::string& config_text,
                  const std::map<std::string, at::Tensor>& tensors) {
  namespace fs = std::filesystem;
  const fs::path partial = folder_partial_path(dir);
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial);
  {
    const fs::path config_path = partial / "adapter_config.json";
    std::ofstream out(config_path, std::ios::binary);
    out << config_text;
    if (!out.flush()) fail(config_path.string(), "cannot be written");
  }
  safetensors_write((partial / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  folder_commit(partial.string(), dir);
}

}  // namespace kmoe::peft_files
