// A tiny random tied LLaMA written as a HF folder (config.json, model.safetensors, a
// byte-level tokenizer.json with <|im_start|>/<|im_end|>, SmolLM2's chat template), for
// tests that need a real model folder without a real model; and the tiny base config that
// the adapter tests (LoRA, MoE, PEFT folders, moe.h5, expert selection) build adapters for.
#pragma once

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/formats/safetensors.h"
#include "model/config.h"

namespace kmoe::testing {

using nlohmann::json;

// A base config for adapter tests (no weights): grouped-query attention (4 query heads over 2
// KV heads, head_dim hidden / 4), so q/k/v/o and the MLP all have different shapes.
inline ModelConfig tiny_llama_config(int64_t hidden = 16, int64_t layers = 2) {
  ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = hidden;
  c.intermediate_size = 24;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = hidden / 4;
  return c;
}

// SmolLM2's chat template, as its tokenizer_config.json ships it.
inline const char* kChatmlTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A tiny HF folder: tied LLaMA with vocab `model_vocab`, a byte-level tokenizer.json with
// 256 byte tokens plus <|im_start|> (256) and <|im_end|> (257), and SmolLM2's template.
inline void write_tiny_hf_model(const std::string& dir, int64_t model_vocab) {
  const int64_t h = 16, inter = 32, layers = 2;
  json config = {{"architectures", {"LlamaForCausalLM"}},
                 {"model_type", "llama"},
                 {"vocab_size", model_vocab},
                 {"hidden_size", h},
                 {"intermediate_size", inter},
                 {"num_hidden_layers", layers},
                 {"num_attention_heads", 2},
                 {"num_key_value_heads", 1},
                 {"rms_norm_eps", 1e-5},
                 {"tie_word_embeddings", true},
                 {"bos_token_id", 1},
                 {"eos_token_id", 2}};
  std::ofstream(dir + "/config.json") << config.dump();
  torch::manual_seed(0);
  std::map<std::string, at::Tensor> w;
  w["model.embed_tokens.weight"] = torch::randn({model_vocab, h});
  w["model.norm.weight"] = torch::ones({h});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w[p + "input_layernorm.weight"] = torch::ones({h});
    w[p + "post_attention_layernorm.weight"] = torch::ones({h});
    w[p + "self_attn.q_proj.weight"] = torch::randn({h, h}) * 0.1;
    w[p + "self_attn.k_proj.weight"] = torch::randn({h / 2, h}) * 0.1;
    w[p + "self_attn.v_proj.weight"] = torch::randn({h / 2, h}) * 0.1;
    w[p + "self_attn.o_proj.weight"] = torch::randn({h, h}) * 0.1;
    w[p + "mlp.gate_proj.weight"] = torch::randn({inter, h}) * 0.1;
    w[p + "mlp.up_proj.weight"] = torch::randn({inter, h}) * 0.1;
    w[p + "mlp.down_proj.weight"] = torch::randn({h, inter}) * 0.1;
  }
  safetensors_write(dir + "/model.safetensors", w);

  json vocab = json::object();
  for (uint32_t b = 0, extra = 0; b < 256; ++b) {  // GPT-2's printable form of each byte
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? b : 256 + extra++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  json tok;
  tok["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}};
  tok["added_tokens"] = json::array({{{"id", 256}, {"content", "<|im_start|>"}, {"special", true}},
                                     {{"id", 257}, {"content", "<|im_end|>"}, {"special", true}}});
  tok["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
  std::ofstream(dir + "/tokenizer_config.json") << json{{"chat_template", kChatmlTemplate}}.dump();
}

}  // namespace kmoe::testing
