// See peft_prompt.h.
#include "data/formats/peft_prompt.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/formats/peft_json.h"
#include "data/formats/safetensors.h"
#include "data/store/folder_commit.h"
#include "model/shape_text.h"

namespace kmoe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kPromptKey = "prompt_embeddings";

[[noreturn]] void prompt_fail(const std::string& path, const std::string& what) {
  peft_json::fail(path, what);
}

}  // namespace

SoftPrompt peft_prompt_load(const std::string& dir, const ModelConfig& base) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) prompt_fail(dir, "soft-prompt directory does not exist");
  const fs::path config_path = d / "adapter_config.json";
  if (!fs::exists(config_path)) prompt_fail(dir, "missing adapter_config.json");
  const fs::path weights_path = d / "adapter_model.safetensors";
  if (!fs::exists(weights_path)) prompt_fail(dir, "missing adapter_model.safetensors");
  const std::string cpath = config_path.string(), wpath = weights_path.string();
  const json j = peft_json::parse_object(peft_json::read_text(cpath), cpath);
  const std::string type = peft_json::get_string(j, "peft_type", "", cpath);
  if (type == "LORA") prompt_fail(cpath, "is a LoRA adapter (peft_type LORA), not a soft prompt: give it as --adapter");
  if (type != "PROMPT_TUNING")
    prompt_fail(cpath, "peft_type is '" + type + "'; a soft prompt is a PROMPT_TUNING adapter");
  const int64_t p = peft_json::get_int(j, "num_virtual_tokens", -1, cpath);
  if (p <= 0) prompt_fail(cpath, "'num_virtual_tokens' must be a positive integer");
  const int64_t dim = peft_json::get_int(j, "token_dim", base.hidden_size, cpath);
  if (dim != base.hidden_size)
    prompt_fail(cpath, "token_dim is " + std::to_string(dim) + " but the base model's hidden size is " +
                           std::to_string(base.hidden_size));
  const int64_t sub = peft_json::get_int(j, "num_transformer_submodules", 1, cpath);
  if (sub != 1)
    prompt_fail(cpath, "num_transformer_submodules is " + std::to_string(sub) +
                           " (an encoder-decoder prompt); a decoder-only model has 1");

  SafetensorsFile file(wpath);
  for (const auto& [key, entry] : file.entries()) {
    if (key != kPromptKey) prompt_fail(wpath, "unexpected tensor '" + key + "' (a soft prompt holds prompt_embeddings)");
  }
  if (!file.has(kPromptKey)) prompt_fail(wpath, "missing tensor 'prompt_embeddings'");
  const std::vector<int64_t> want{p, base.hidden_size};
  if (file.entries().at(kPromptKey).shape != want)
    prompt_fail(wpath, "tensor 'prompt_embeddings' has shape " + shape_text(file.entries().at(kPromptKey).shape) +
                           ", expected " + shape_text(want) + " (num_virtual_tokens x hidden size)");
  at::Tensor t = file.tensor(kPromptKey);
  if (!t.is_floating_point()) prompt_fail(wpath, "tensor 'prompt_embeddings' is not floating point");
  if (!at::isfinite(t).all().item<bool>())
    prompt_fail(wpath, "tensor 'prompt_embeddings' holds non-finite values (NaN or inf)");

  SoftPrompt out;
  out.embeddings = t.to(torch::kFloat32).contiguous();
  out.init = peft_json::get_string(j, "prompt_tuning_init", "", cpath);
  if (out.init.empty()) out.init = "RANDOM";
  out.init_text = peft_json::get_string(j, "prompt_tuning_init_text", "", cpath);
  out.base_model = peft_json::get_string(j, "base_model_name_or_path", "", cpath);
  return out;
}

void peft_prompt_apply(const std::string& dir, LlamaModel& model) {
  const SoftPrompt p = peft_prompt_load(dir, model.config);
  llama_set_soft_prompt(model, p.embeddings.to(model.embed_tokens.device(), model.embed_tokens.scalar_type()));
}

std::string peft_prompt_config_json(const SoftPrompt& prompt, const ModelConfig& base) {
  const bool text = prompt.init == "TEXT";
  const json j = {
      {"peft_type", "PROMPT_TUNING"},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", prompt.base_model.empty() ? json(nullptr) : json(prompt.base_model)},
      {"revision", nullptr},
      {"task_type", "CAUSAL_LM"},
      // true: PEFT takes the saved embeddings as they are (no re-initialisation, no tokenizer)
      {"inference_mode", true},
      {"num_virtual_tokens", prompt.embeddings.size(0)},
      {"token_dim", base.hidden_size},
      {"num_transformer_submodules", 1},
      {"num_attention_heads", base.num_attention_heads},
      {"num_layers", base.num_hidden_layers},
      {"prompt_tuning_init", text ? "TEXT" : "RANDOM"},
      {"prompt_tuning_init_text", text ? json(prompt.init_text) : json(nullptr)},
      {"tokenizer_name_or_path", text && !prompt.base_model.empty() ? json(prompt.base_model) : json(nullptr)},
      {"tokenizer_kwargs", nullptr},
  };
  return j.dump(2) + "\n";
}

void peft_prompt_save(const SoftPrompt& prompt, const ModelConfig& base, const std::string& dir) {
  if (!prompt.embeddings.defined() || prompt.embeddings.dim() != 2 || prompt.embeddings.size(1) != base.hidden_size)
    throw std::invalid_argument(dir + ": a soft prompt must be [virtual tokens, hidden size]");
  const fs::path partial = folder_partial_path(dir);
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial);
  {
    const fs::path config_path = partial / "adapter_config.json";
    std::ofstream out(config_path, std::ios::binary);
    out << peft_prompt_config_json(prompt, base);
    if (!out.flush()) prompt_fail(config_path.string(), "cannot be written");
  }
  const at::Tensor t = prompt.embeddings.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  safetensors_write((partial / "adapter_model.safetensors").string(), {{kPromptKey, t}}, {{"format", "pt"}});
  folder_commit(partial.string(), dir);
}

}  // namespace kmoe
