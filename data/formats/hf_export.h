// The writing side of hf_checkpoint.h: a LlamaModel's tensors under the names transformers
// expects ("model.layers.0.self_attn.q_proj.weight", ...), and an HF model folder of them
// that transformers and `kmoe` load back (what `kmoe train --mode full` writes).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"

namespace kmoe {

// The model's own tensors (handles, not copies) under their HF names, in the order HF lists
// them: embed_tokens, each layer's norms, attention (biases where the model has them) and
// MLP, the final norm, then lm_head only when it is not tied to embed_tokens (a tied head
// is written once, as model.embed_tokens.weight, as transformers does).
std::vector<std::pair<std::string, at::Tensor>> llama_named_weights(const LlamaModel& m);

// Writes an HF folder into `dir` (removed first: the caller's DIR.partial): config.json,
// generation_config.json and the tokenizer files copied from `input_dir` where it has them,
// and `weights` as float32 CPU tensors in one model.safetensors (metadata format "pt").
void hf_folder_save(const std::string& input_dir, const std::vector<std::pair<std::string, at::Tensor>>& weights,
                    const std::string& dir);

}  // namespace kmoe
