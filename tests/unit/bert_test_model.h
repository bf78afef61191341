// A tiny random BERT folder (config.json, model.safetensors, vocab.txt) for the encoder tests.
#pragma once

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "data/formats/safetensors.h"
#include "model/bert.h"

namespace kmoe::testing {

inline std::vector<std::string> tiny_bert_vocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]",  "[MASK]", "the", "cat", "sat",   "on",
          "mat",   "un",    "##aff", "##able", "a",      "b",   "c",   "d",     "e",
          ".",     ",",     "!",     "cafe",   "##s",    "中",  "文",  "hello", "world"};
}

inline BertConfig tiny_bert_config() {
  BertConfig c;
  c.vocab_size = static_cast<int64_t>(tiny_bert_vocab().size());
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.max_position_embeddings = 64;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12;
  return c;
}

// HF-named random weights; `prefix` is "" or "bert.".
inline std::map<std::string, at::Tensor> tiny_bert_weights(const std::string& prefix = "") {
  const BertConfig c = tiny_bert_config();
  torch::manual_seed(7);
  std::map<std::string, at::Tensor> w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) { w[prefix + name] = torch::randn(shape) * 0.2; };
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  add("embeddings.word_embeddings.weight", {c.vocab_size, h});
  add("embeddings.position_embeddings.weight", {c.max_position_embeddings, h});
  add("embeddings.token_type_embeddings.weight", {c.type_vocab_size, h});
  add("embeddings.LayerNorm.weight", {h});
  add("embeddings.LayerNorm.bias", {h});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* m :
         {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      add(p + m + ".weight", {h, h});
      add(p + m + ".bias", {h});
    }
    add(p + "attention.output.LayerNorm.weight", {h});
    add(p + "attention.output.LayerNorm.bias", {h});
    add(p + "intermediate.dense.weight", {i, h});
    add(p + "intermediate.dense.bias", {i});
    add(p + "output.dense.weight", {h, i});
    add(p + "output.dense.bias", {h});
    add(p + "output.LayerNorm.weight", {h});
    add(p + "output.LayerNorm.bias", {h});
  }
  w[prefix + "pooler.dense.weight"] = torch::randn({h, h});
  return w;
}

inline void tiny_bert_folder_write(const std::string& dir, const std::string& prefix = "") {
  const BertConfig c = tiny_bert_config();
  std::ofstream(dir + "/config.json")
      << "{\"model_type\": \"bert\", \"vocab_size\": " << c.vocab_size
      << ", \"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
         " \"intermediate_size\": 32, \"max_position_embeddings\": 64,"
         " \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}";
  std::ofstream vocab(dir + "/vocab.txt");
  for (const auto& t : tiny_bert_vocab()) vocab << t << "\n";
  safetensors_write(dir + "/model.safetensors", tiny_bert_weights(prefix));
}

}  // namespace kmoe::testing
