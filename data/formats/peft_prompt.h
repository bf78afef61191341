// PEFT prompt-tuning adapters (ProMoT's soft prompts, METHOD.md §3): adapter_config.json with
// peft_type PROMPT_TUNING and num_virtual_tokens, and adapter_model.safetensors holding
// "prompt_embeddings" [num_virtual_tokens, hidden], as PEFT 0.12 saves a PromptTuningConfig
// for a causal LM (one transformer submodule). PEFT puts the embeddings before the input
// embeddings of every sequence; kmoe does the same with LlamaModel::soft_prompt.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/llama.h"

namespace kmoe {

struct SoftPrompt {
  at::Tensor embeddings;        // [num_virtual_tokens, hidden] float32 on the CPU
  std::string init = "RANDOM";  // PEFT's prompt_tuning_init: TEXT or RANDOM (recorded only)
  std::string init_text;        // prompt_tuning_init_text when init is TEXT
  std::string base_model;       // base_model_name_or_path, may be empty
};

// Loads DIR and checks it against `base` (token_dim = hidden size, one submodule, finite
// values). Errors name the directory, file or tensor; a LoRA adapter given here is named as
// such.
SoftPrompt peft_prompt_load(const std::string& dir, const ModelConfig& base);
// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (float32) so PEFT loads
// them; into DIR.partial/ first, then renamed over DIR.
void peft_prompt_save(const SoftPrompt& prompt, const ModelConfig& base, const std::string& dir);
// Loads DIR (peft_prompt_load against model.config) and sets it as the model's soft prompt,
// frozen, in the model's dtype and on its device.
void peft_prompt_apply(const std::string& dir, LlamaModel& model);
// The adapter_config.json text for `prompt` over `base`.
std::string peft_prompt_config_json(const SoftPrompt& prompt, const ModelConfig& base);

}  // namespace kmoe
