// See hf_export.h.
#include "data/formats/hf_export.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "data/formats/safetensors.h"

namespace kmoe {

namespace fs = std::filesystem;

std::vector<std::pair<std::string, at::Tensor>> llama_named_weights(const LlamaModel& m) {
  std::vector<std::pair<std::string, at::Tensor>> out{{"model.embed_tokens.weight", m.embed_tokens}};
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const auto& y = m.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "input_layernorm.weight", y.input_layernorm);
    out.emplace_back(p + "self_attn.q_proj.weight", y.q_proj);
    out.emplace_back(p + "self_attn.k_proj.weight", y.k_proj);
    out.emplace_back(p + "self_attn.v_proj.weight", y.v_proj);
    out.emplace_back(p + "self_attn.o_proj.weight", y.o_proj);
    if (y.q_bias.defined()) out.emplace_back(p + "self_attn.q_proj.bias", y.q_bias);
    if (y.k_bias.defined()) out.emplace_back(p + "self_attn.k_proj.bias", y.k_bias);
    if (y.v_bias.defined()) out.emplace_back(p + "self_attn.v_proj.bias", y.v_bias);
    if (y.o_bias.defined()) out.emplace_back(p + "self_attn.o_proj.bias", y.o_bias);
    out.emplace_back(p + "post_attention_layernorm.weight", y.post_attention_layernorm);
    out.emplace_back(p + "mlp.gate_proj.weight", y.gate_proj);
    out.emplace_back(p + "mlp.up_proj.weight", y.up_proj);
    out.emplace_back(p + "mlp.down_proj.weight", y.down_proj);
  }
  out.emplace_back("model.norm.weight", m.norm);
  if (!m.lm_head.is_same(m.embed_tokens)) out.emplace_back("lm_head.weight", m.lm_head);
  return out;
}

void hf_folder_save(const std::string& input_dir, const std::vector<std::pair<std::string, at::Tensor>>& weights,
                    const std::string& dir) {
  const fs::path partial = dir;
  fs::remove_all(partial);
  fs::create_directories(partial);
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt"}) {
    if (fs::exists(fs::path(input_dir) / name)) fs::copy_file(fs::path(input_dir) / name, partial / name);
  }
  std::map<std::string, at::Tensor> named;
  for (const auto& [name, t] : weights) named[name] = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  safetensors_write((partial / "model.safetensors").string(), named, {{"format", "pt"}});
}

}  // namespace kmoe
