// See peft_adapter.h.
#include "data/formats/peft_adapter.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/formats/peft_files.h"
#include "data/formats/safetensors.h"
#include "model/shape_text.h"

namespace kmoe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kKeyPrefix = "base_model.model.";

using peft_files::get_bool;
using peft_files::get_int;
using peft_files::get_number;
using peft_files::get_string;

[[noreturn]] void adapter_fail(const std::string& path, const std::string& what) {
  peft_files::fail(path, what);
}

bool is_null_or_empty(const json& v) {
  return v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty());
}

std::vector<LinearModule> parse_targets(const json& j, const std::string& path) {
  if (!j.contains("target_modules") || j["target_modules"].is_null()) adapter_fail(path, "'target_modules' is missing");
  const json& t = j["target_modules"];
  if (t.is_string()) {
    // PEFT reads any other string as a regex fully matched against module paths.
    if (t.get<std::string>() == "all-linear") return {std::begin(kAllLinearModules), std::end(kAllLinearModules)};
    adapter_fail(path, "target_modules is the regex string " + t.dump() +
                           "; kmoe supports a list of module names or \"all-linear\"");
  }
  if (!t.is_array() || t.empty()) adapter_fail(path, "'target_modules' must be a non-empty list or \"all-linear\"");
  std::vector<LinearModule> out;
  for (const auto& name : t) {
    if (!name.is_string()) adapter_fail(path, "target_modules entry " + name.dump() + " is not a string");
    try {
      const LinearModule m = linear_module_parse(name.get<std::string>());
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    } catch (const std::invalid_argument&) {
      adapter_fail(path,
                   "target module '" + name.get<std::string>() +
                       "' is not a linear layer of the LLaMA-family base (q_proj, k_proj, v_proj, o_proj, gate_proj, "
                       "up_proj, down_proj)");
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> parse_layers(const json& j, const std::string& path) {
  if (!j.contains("layers_to_transform") || j["layers_to_transform"].is_null()) return {};
  const json& l = j["layers_to_transform"];
  if (l.is_number_integer()) return {l.get<int64_t>()};
  if (!l.is_array()) adapter_fail(path, "'layers_to_transform' must be an integer or a list of integers");
  std::vector<int64_t> out;
  for (const auto& v : l) {
    if (!v.is_number_integer()) adapter_fail(path, "layers_to_transform entry " + v.dump() + " is not an integer");
    out.push_back(v.get<int64_t>());
  }
  return out;
}

// "base_model.model.model.layers.3.mlp.down_proj.lora_B.weight" -> (3, down_proj, 'B');
// false for anything else.
bool parse_key(const std::string& key, int64_t& layer, LinearModule& module, char& which) {
  const std::string head = std::string(kKeyPrefix) + "model.layers.";
  if (key.rfind(head, 0) != 0) return false;
  size_t pos = head.size();
  size_t digits = pos;
  while (digits < key.size() && std::isdigit(static_cast<unsigned char>(key[digits]))) ++digits;
  if (digits == pos || digits - pos > 9) return false;
  layer = std::stoll(key.substr(pos, digits - pos));
  for (LinearModule m : kAllLinearModules) {
    for (char w : {'A', 'B'}) {
      if (key == peft_tensor_key(layer, m, w)) {
        module = m;
        which = w;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

LoraConfig peft_config_parse(const std::string& json_text, const std::string& path) {
  const json j = peft_files::parse_object(json_text, path);

  const std::string peft_type = get_string(j, "peft_type", "LORA", path);
  if (peft_type == "PROMPT_TUNING")
    adapter_fail(path, "is a soft prompt (peft_type PROMPT_TUNING), not a LoRA adapter: give it as --soft-prompt");
  if (peft_type != "LORA") adapter_fail(path, "peft_type is '" + peft_type + "'; kmoe loads LORA adapters only");
  const std::string bias = get_string(j, "bias", "none", path);
  if (bias != "none") adapter_fail(path, "bias is '" + bias + "'; kmoe supports bias \"none\" only");
  if (get_bool(j, "use_dora", false, path)) adapter_fail(path, "use_dora is true; kmoe does not support DoRA");
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (j.contains(key) && !is_null_or_empty(j[key]))
      adapter_fail(path,
                   std::string(key) + " is " + j[key].dump() + "; kmoe supports one rank and alpha for all modules");
  }
  for (const char* key : {"modules_to_save", "layer_replication"}) {
    if (j.contains(key) && !is_null_or_empty(j[key]))
      adapter_fail(path, std::string(key) + " is " + j[key].dump() + "; kmoe does not support it");
  }
  if (j.contains("layers_pattern") && !j["layers_pattern"].is_null()) {
    const json& p = j["layers_pattern"];
    const bool is_layers =
        (p.is_string() && p.get<std::string>() == "layers") || (p.is_array() && p.size() == 1 && p[0] == "layers");
    if (!is_layers) adapter_fail(path, "layers_pattern is " + p.dump() + "; a LLaMA-family base has only \"layers\"");
  }

  LoraConfig c;
  c.r = get_int(j, "r", 8, path);
  if (c.r <= 0) adapter_fail(path, "'r' must be positive, got " + std::to_string(c.r));
  c.lora_alpha = get_number(j, "lora_alpha", 8.0, path);
  c.lora_dropout = get_number(j, "lora_dropout", 0.0, path);
  if (c.lora_dropout < 0 || c.lora_dropout >= 1) adapter_fail(path, "'lora_dropout' must be in [0, 1)");
  c.use_rslora = get_bool(j, "use_rslora", false, path);
  // PEFT sets fan_in_fan_out back to false for nn.Linear layers, which is all a LLaMA base has.
  get_bool(j, "fan_in_fan_out", false, path);
  c.fan_in_fan_out = false;
  c.target_modules = parse_targets(j, path);
  c.layers_to_transform = parse_layers(j, path);
  c.base_model_name_or_path = get_string(j, "base_model_name_or_path", "", path);
  c.task_type = get_string(j, "task_type", "", path);
  return c;
}

std::string peft_config_json(const LoraConfig& c) {
  json targets = json::array();
  for (LinearModule m : c.target_modules) targets.push_back(linear_module_name(m));
  json j = {
      {"peft_type", "LORA"},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", c.base_model_name_or_path.empty() ? json(nullptr) : json(c.base_model_name_or_path)},
      {"revision", nullptr},
      {"task_type", c.task_type.empty() ? json(nullptr) : json(c.task_type)},
      {"inference_mode", true},
      {"r", c.r},
      {"target_modules", targets},
      // PEFT writes an integer alpha; keep that form when the value is one.
      {"lora_alpha", c.lora_alpha == std::floor(c.lora_alpha) && std::abs(c.lora_alpha) < 1e15
                         ? json(static_cast<int64_t>(c.lora_alpha))
                         : json(c.lora_alpha)},
      {"lora_dropout", c.lora_dropout},
      {"fan_in_fan_out", c.fan_in_fan_out},
      {"bias", "none"},
      {"use_rslora", c.use_rslora},
      {"modules_to_save", nullptr},
      {"init_lora_weights", true},
      {"layers_to_transform", c.layers_to_transform.empty() ? json(nullptr) : json(c.layers_to_transform)},
      {"layers_pattern", nullptr},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"use_dora", false},
      {"layer_replication", nullptr},
  };
  return j.dump(2) + "\n";
}

std::string peft_tensor_key(int64_t layer, LinearModule module, char which) {
  return std::string(kKeyPrefix) + lora_module_path(layer, module) + ".lora_" + which + ".weight";
}

LoraAdapter peft_adapter_load(const std::string& dir, const ModelConfig& base, const std::string& name) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) adapter_fail(dir, "adapter directory does not exist");
  const fs::path config_path = d / "adapter_config.json";
  if (!fs::exists(config_path)) adapter_fail(dir, "missing adapter_config.json");
  const fs::path weights_path = d / "adapter_model.safetensors";
  if (!fs::exists(weights_path)) {
    if (fs::exists(d / "adapter_model.bin"))
      adapter_fail(dir,
                   "has adapter_model.bin (a PyTorch pickle), which kmoe does not read; save the adapter with "
                   "safe_serialization=True to get adapter_model.safetensors");
    adapter_fail(dir, "missing adapter_model.safetensors");
  }

  LoraAdapter adapter;
  adapter.name = name.empty() ? d.filename().string() : name;
  if (adapter.name.empty()) adapter.name = d.parent_path().filename().string();  // "dir/" has an empty filename
  adapter.config = peft_config_parse(peft_files::read_text(config_path.string()), config_path.string());
  const LoraConfig& c = adapter.config;
  const std::string wpath = weights_path.string();
  for (int64_t layer : c.layers_to_transform) {
    if (layer < 0 || layer >= base.num_hidden_layers)
      adapter_fail(config_path.string(), "layers_to_transform names layer " + std::to_string(layer) +
                                             " but the base has " + std::to_string(base.num_hidden_layers) + " layers");
  }

  SafetensorsFile file(wpath);
  for (const auto& [key, entry] : file.entries()) {
    int64_t layer = 0;
    LinearModule m{};
    char which = 0;
    if (!parse_key(key, layer, m, which))
      adapter_fail(
          wpath, "unexpected tensor '" + key + "' (kmoe reads the lora_A/lora_B weights of q/k/v/o/gate/up/down_proj)");
    if (layer >= base.num_hidden_layers)
      adapter_fail(wpath, "tensor '" + key + "' is for layer " + std::to_string(layer) + " but the base has " +
                              std::to_string(base.num_hidden_layers) + " layers");
    if (!lora_targets(c, layer, m))
      adapter_fail(wpath, "tensor '" + key + "' is for a module that adapter_config.json does not target");
    const auto [in, out] = linear_features(base, m);
    const std::vector<int64_t> want = which == 'A' ? std::vector<int64_t>{c.r, in} : std::vector<int64_t>{out, c.r};
    if (entry.shape != want)
      adapter_fail(wpath, "tensor '" + key + "' has shape " + shape_text(entry.shape) + ", expected " +
                              shape_text(want) + " (r = " + std::to_string(c.r) + ", base " + linear_module_name(m) +
                              " is " + std::to_string(in) + " -> " + std::to_string(out) + ")");
    at::Tensor t = file.tensor(key);
    if (!t.is_floating_point()) adapter_fail(wpath, "tensor '" + key + "' is not floating point (" + entry.dtype + ")");
    if (!at::isfinite(t).all().item<bool>())
      adapter_fail(wpath, "tensor '" + key + "' holds non-finite values (NaN or inf)");
    LoraWeights& w = adapter.weights[{layer, m}];
    (which == 'A' ? w.A : w.B) = t.to(torch::kFloat32).contiguous();
  }
  for (int64_t layer = 0; layer < base.num_hidden_layers; ++layer) {
    for (LinearModule m : kAllLinearModules) {
      if (!lora_targets(c, layer, m)) continue;
      for (char which : {'A', 'B'}) {
        if (!file.has(peft_tensor_key(layer, m, which)))
          adapter_fail(wpath, "missing tensor '" + peft_tensor_key(layer, m, which) + "'");
      }
    }
  }
  try {
    lora_adapter_validate(adapter, base);
  } catch (const std::invalid_argument& e) {
    adapter_fail(dir, e.what());
  }
  return adapter;
}

void peft_adapter_save(const LoraAdapter& adapter, const std::string& dir) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [key, w] : adapter.weights) {
    tensors[peft_tensor_key(key.first, key.second, 'A')] = w.A.detach().to(torch::kCPU).contiguous();
    tensors[peft_tensor_key(key.first, key.second, 'B')] = w.B.detach().to(torch::kCPU).contiguous();
  }
  peft_files::write_folder(dir, peft_config_json(adapter.config), tensors);
}

}  // namespace kmoe
