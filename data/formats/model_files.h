// A base model as a user names it on the command line: a HF folder (config.json, model
// safetensors (single or sharded), tokenizer.json or tokenizer.model, optionally
// tokenizer_config.json with a chat template) or one .gguf file (weights dequantised to
// float32, tokenizer and chat template from its metadata). Everything downstream sees the
// same thing: a config, HF-named float32 weights, a tokenizer and, if it has one, a chat template.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizers/chat_template.h"
#include "data/tokenizers/tokenizer.h"
#include "model/config.h"

namespace at {
class Tensor;
}

namespace kmoe {

struct ModelFiles {
  std::string path;
  std::string format;  // "hf" or "gguf"
  ModelConfig config;
  std::map<std::string, at::Tensor> weights;  // HF names, float32, CPU
  std::unique_ptr<Tokenizer> tokenizer;
  // Absent when the model has no chat template, or one kmoe's Jinja interpreter refuses; then
  // chat_template_error says what was refused ("chat template line 3: filter 'x' is not supported").
  std::optional<ChatTemplate> chat_template;
  std::string chat_template_error;
  std::vector<int64_t> stop_token_ids;  // EOS ids, plus the chat template's end-of-turn tokens
};

// Throws naming the path (and the file inside it) when it is neither kind or is malformed.
ModelFiles model_files_load(const std::string& path);

// The chat template for --prompt-format chat; throws naming the model and why there is none
// (no template, or the construct kmoe's interpreter refused).
const ChatTemplate& model_chat_template(const ModelFiles& files);

}  // namespace kmoe
