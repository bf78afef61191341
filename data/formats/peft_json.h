// The adapter_config.json fields of PEFT adapters, shared by the LoRA reader (peft_adapter.*)
// and the prompt-tuning reader (peft_prompt.*). Every error names the file: "PATH: ...".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace kmoe::peft_json {

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

}  // namespace kmoe::peft_json
