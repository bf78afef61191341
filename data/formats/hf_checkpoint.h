// A Hugging Face model folder (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json) read into a ModelConfig and named float32 tensors. Names are
// kept exactly as HF writes them ("model.layers.0.self_attn.q_proj.weight") so model/ can
// check them against what it expects and name the offender in its errors.
#pragma once

#include <map>
#include <string>

#include "model/config.h"

namespace at {
class Tensor;
}

namespace kmoe {

// LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (SmolLM is llama). Throws naming
// config.json and the key that is missing, mistyped or unsupported.
ModelConfig hf_config_load(const std::string& model_dir);

// Every tensor of model.safetensors, or of the shards in model.safetensors.index.json's
// weight_map, converted to float32 on the CPU. Throws naming the index and the shard when a
// shard is missing or lacks a tensor the index lists.
std::map<std::string, at::Tensor> hf_weights_load(const std::string& model_dir);

}  // namespace kmoe
