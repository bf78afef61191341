// See peft_prompt.h.
#include "data/formats/peft_prompt.h"

#include <torch/torch.h>

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

const char* const kPromptKey = "prompt_embeddings";

}  // namespace

SoftPrompt peft_prompt_load(const std::string& dir, const ModelConfig& base) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) peft_files::fail(dir, "soft-prompt directory does not exist");
  const fs::path config_path = d / "adapter_config.json";
  if (!fs::exists(config_path)) peft_files::fail(dir, "missing adapter_config.json");
  const fs::path weights_path = d / "adapter_model.safetensors";
  if (!fs::exists(weights_path)) peft_files::fail(dir, "missing adapter_model.safetensors");
  const std::string cpath = config_path.string(), wpath = weights_path.string();
  const json j = peft_files::parse_object(peft_files::read_text(cpath), cpath);
  const std::string type = peft_files::get_string(j, "peft_type", "", cpath);
  if (type == "LORA")
    peft_files::fail(cpath, "is a LoRA adapter (peft_type LORA), not a soft prompt: give it as --adapter");
  if (type != "PROMPT_TUNING")
    peft_files::fail(cpath, "peft_type is '" + type + "'; a soft prompt is a PROMPT_TUNING adapter");
  const int64_t p = peft_files::get_int(j, "num_virtual_tokens", -1, cpath);
  if (p <= 0) peft_files::fail(cpath, "'num_virtual_tokens' must be a positive integer");
  const int64_t dim = peft_files::get_int(j, "token_dim", base.hidden_size, cpath);
  if (dim != base.hidden_size)
    peft_files::fail(cpath, "token_dim is " + std::to_string(dim) + " but the base model's hidden size is " +
                                std::to_string(base.hidden_size));
  const int64_t sub = peft_files::get_int(j, "num_transformer_submodules", 1, cpath);
  if (sub != 1)
    peft_files::fail(cpath, "num_transformer_submodules is " + std::to_string(sub) +
                                " (an encoder-decoder prompt); a decoder-only model has 1");

  SafetensorsFile file(wpath);
  for (const auto& [key, entry] : file.entries()) {
    if (key != kPromptKey)
      peft_files::fail(wpath, "unexpected tensor '" + key + "' (a soft prompt holds prompt_embeddings)");
  }
  if (!file.has(kPromptKey)) peft_files::fail(wpath, "missing tensor 'prompt_embeddings'");
  const std::vector<int64_t> want{p, base.hidden_size};
  if (file.entries().at(kPromptKey).shape != want)
    peft_files::fail(wpath, "tensor 'prompt_embeddings' has shape " + shape_text(file.entries().at(kPromptKey).shape) +
                                ", expected " + shape_text(want) + " (num_virtual_tokens x hidden size)");
  at::Tensor t = file.tensor(kPromptKey);
  if (!t.is_floating_point()) peft_files::fail(wpath, "tensor 'prompt_embeddings' is not floating point");
  if (!at::isfinite(t).all().item<bool>())
    peft_files::fail(wpath, "tensor 'prompt_embeddings' holds non-finite values (NaN or inf)");

  SoftPrompt out;
  out.embeddings = t.to(torch::kFloat32).contiguous();
  out.init = peft_files::get_string(j, "prompt_tuning_init", "", cpath);
  if (out.init.empty()) out.init = "RANDOM";
  out.init_text = peft_files::get_string(j, "prompt_tuning_init_text", "", cpath);
  out.base_model = peft_files::get_string(j, "base_model_name_or_path", "", cpath);
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
  const at::Tensor t = prompt.embeddings.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  peft_files::write_folder(dir, peft_prompt_config_json(prompt, base), {{kPromptKey, t}});
}

}  // namespace kmoe
