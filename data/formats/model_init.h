// A random-initialised LLaMA-shaped HF folder that kmoe then trains itself (`kmoe demo`'s
// base model): config.json, model.safetensors, a byte-level tokenizer.json and a
// tokenizer_config.json with a ChatML template. The tokenizer has no merges: 256 byte tokens
// in GPT-2's byte-to-unicode spelling plus the ChatML specials, so any text encodes without a
// trained vocabulary and HF transformers/tokenizers load the folder as it is.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace kmoe {

struct ModelInitOptions {
  int64_t hidden = 128;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t intermediate = 352;
  int64_t max_position = 1024;
  double init_std = 0.02;  // normal(0, std) for every matrix; o_proj/down_proj scaled by 1/sqrt(2 * layers)
  uint64_t seed = 0;
};

// Token ids of the byte-level vocabulary: byte b is id b; then the ChatML specials.
inline constexpr int32_t kInitImStart = 256, kInitImEnd = 257, kInitEndOfText = 258, kInitVocab = 259;

// Throws std::invalid_argument naming the option when the shape is inconsistent
// (hidden not divisible by heads, heads not by kv_heads, an odd head size for RoPE, ...).
void model_init_validate(const ModelInitOptions& options);

// config.json's content, with the options recorded under "kmoe_init" (how to tell a folder
// made with the same options).
nlohmann::json model_init_config(const ModelInitOptions& options);
std::string model_init_tokenizer_json();
std::string model_init_tokenizer_config_json();

// Writes the folder as DIR.partial and renames it to DIR (an existing DIR is replaced).
void model_init_write(const std::string& dir, const ModelInitOptions& options);

// True when DIR holds a complete folder written with exactly these options.
bool model_init_matches(const std::string& dir, const ModelInitOptions& options);

}  // namespace kmoe
