// The BERT-family encoder (BERT, MiniLM, BGE) as plain tensors and free functions, matching
// HF transformers' BertModel in fp32, plus sentence-transformers' pooling. Padded positions
// are masked out as keys with a large negative bias, so a text's vector does not depend on
// how much padding its batch mates added (the exp underflows to exactly zero).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kmoe {

// HF config.json field names.
struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // the erf GELU; the only one implemented
};

struct BertLayer {
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b;  // [hidden, hidden], [hidden]
  at::Tensor o_w, o_b;                      // attention output dense
  at::Tensor attn_ln_w, attn_ln_b;          // [hidden]
  at::Tensor up_w, up_b;                    // intermediate.dense [intermediate, hidden]
  at::Tensor down_w, down_b;                // output.dense [hidden, intermediate]
  at::Tensor out_ln_w, out_ln_b;            // [hidden]
};

struct BertModel {
  BertConfig config;
  at::Tensor word_embeddings;        // [vocab, hidden]
  at::Tensor position_embeddings;    // [max_positions, hidden]
  at::Tensor token_type_embeddings;  // [type_vocab, hidden]
  at::Tensor embed_ln_w, embed_ln_b;
  std::vector<BertLayer> layers;
};

// Builds the model from HF-named tensors, with or without the "bert." prefix
// ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight", ...).
// The pooler and position_ids buffers are ignored; a missing tensor or a wrong shape throws
// naming the tensor. The projections' weights and biases are cast to `dtype` (float32, or
// bfloat16: the projections and attention products then run in bfloat16, while embeddings,
// layer norms, the residual stream, the attention softmax and the output stay float32).
BertModel bert_from_weights(const BertConfig& config, const std::map<std::string, at::Tensor>& hf_named_weights,
                            c10::ScalarType dtype = c10::kFloat);

// input_ids [batch, seq] int64, attention_mask [batch, seq] int64 (1 = token, 0 = pad).
// Returns the last hidden states [batch, seq, hidden] float32 (token_type_ids all 0).
at::Tensor bert_forward(const BertModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask);

enum class BertPooling { mean, cls };

// hidden [batch, seq, hidden], attention_mask [batch, seq] -> [batch, hidden]. mean averages
// the non-pad tokens ([CLS] and [SEP] included, as sentence-transformers does); cls takes
// position 0. normalize: divide by the L2 norm (clamped at 1e-12, as torch's F.normalize).
at::Tensor bert_pool(const at::Tensor& hidden, const at::Tensor& attention_mask, BertPooling pooling, bool normalize);

}  // namespace kmoe
