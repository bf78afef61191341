// Hyper-parameters of a LLaMA-family decoder (LLaMA 2/3, Mistral, Qwen2, SmolLM). Filled
// from a HF config.json or from GGUF metadata by data/, read by model/. Field names follow
// HF's config.json so the mapping stays obvious.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kmoe {

struct RopeScaling {
  std::string type = "none";  // "none" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture = "llama";  // llama | mistral | qwen2 (same math; qwen2 has q/k/v bias)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless the config says otherwise
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;  // bias on q/k/v projections (Qwen2)
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;
};

}  // namespace kmoe
