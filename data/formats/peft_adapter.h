// PEFT LoRA adapter directories: adapter_config.json + adapter_model.safetensors with PEFT's
// key names (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight; no adapter
// name in saved keys). Options kmoe cannot honour (bias, DoRA, per-module rank/alpha
// patterns, modules_to_save, regex targets) are refused rather than silently ignored, since
// an adapter loaded without them would give different logits than in PEFT.
#pragma once

#include <string>

#include "model/config.h"
#include "model/lora.h"

namespace kmoe {

// Parses the text of an adapter_config.json; `path` names it in errors (with the line for
// bad JSON). Throws std::invalid_argument for unsupported options.
LoraConfig peft_config_parse(const std::string& json_text, const std::string& path);
std::string peft_config_json(const LoraConfig& config);

// PEFT's key for an adapter tensor, which = 'A' or 'B'.
std::string peft_tensor_key(int64_t layer, LinearModule module, char which);

// Loads DIR as an adapter named `name` (DIR's last component when empty), weights as float32
// on the CPU, and validates it against `base`. Errors name the directory and file/tensor.
LoraAdapter peft_adapter_load(const std::string& dir, const ModelConfig& base, const std::string& name = "");
// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors so PEFT loads them; into
// DIR.partial/ first, then renamed over DIR.
void peft_adapter_save(const LoraAdapter& adapter, const std::string& dir);

}  // namespace kmoe
