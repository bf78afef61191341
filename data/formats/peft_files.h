// The files of a PEFT adapter folder (adapter_config.json, adapter_model.safetensors), shared
// by the LoRA (peft_adapter.*) and prompt-tuning (peft_prompt.*) formats: the typed config
// fields and the atomic folder write. Every error names the file: "PATH: ...".
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace at {
class Tensor;
}

namespace kmoe::peft_files {

[[noreturn]] void fail(const std::string& path, const std::string& what);
// The file's text; throws naming it when it cannot be read.
std::string read_text(const std::string& path);
// `text` parsed as a JSON object; bad JSON is an error naming its line.
nlohmann::json parse_object(const std::string& text, const std::string& path);
// A missing or null field gives `fallback`; a field of another type is an error.
int64_t get_int(const nlohmann::json& j, const std::string& key, int64_t fallback, const std::string& path);
double get_number(const nlohmann::json& j, const std::string& key, double fallback, const std::string& path);
bool get_bool(const nlohmann::json& j, const std::string& key, bool fallback, const std::string& path);
std::string get_string(const nlohmann::json& j, const std::string& key, const std::string& fallback,
                       const std::string& path);

// Writes DIR/adapter_config.json (config_text) and DIR/adapter_model.safetensors (tensors, with
// PEFT's {"format": "pt"} metadata) into DIR.partial/, then renames it over DIR.
void write_folder(const std::string& dir, const std::string& config_text,
                  const std::map<std::string, at::Tensor>& tensors);

}  // namespace kmoe::peft_files
