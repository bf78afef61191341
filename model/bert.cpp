// BERT forward (float32, or bfloat16 projections and attention); see the header. Post-LN layers: x = LN(x + attn(x)), x = LN(x + ffn(x)).
#include "model/bert.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace kmoe {
namespace {

at::Tensor weight_take(const std::map<std::string, at::Tensor>& weights, const std::string& prefix,
                       const std::string& name, std::vector<int64_t> shape,
                       c10::ScalarType dtype = torch::kFloat32) {
  auto it = weights.find(prefix + name);
  if (it == weights.end()) throw std::runtime_error("BERT weights: tensor " + prefix + name + " is missing");
  const at::Tensor& t = it->second;
  if (t.sizes().vec() != shape) {
    throw std::runtime_error("BERT weights: tensor " + prefix + name + " has shape " + c10::str(t.sizes()) +
                             ", expected " + c10::str(at::IntArrayRef(shape)));
  }
  return t.to(dtype).contiguous();
}

// In the weight's dtype (the input cast to it); the result stays in that dtype.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return torch::nn::functional::linear(x.to(w.scalar_type()), w, b);
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps) {
  return at::layer_norm(x, {x.size(-1)}, w, b, eps);
}

}  // namespace

BertModel bert_from_weights(const BertConfig& config, const std::map<std::string, at::Tensor>& weights,
                            c10::ScalarType dtype) {
  const int64_t h = config.hidden_size, inter = config.intermediate_size;
  if (h <= 0 || config.num_attention_heads <= 0 || h % config.num_attention_heads != 0 || inter <= 0 ||
      config.num_hidden_layers <= 0 || config.vocab_size <= 0) {
    throw std::runtime_error("BERT config: hidden_size " + std::to_string(h) + " / num_attention_heads " +
                             std::to_string(config.num_attention_heads) + " / intermediate_size " +
                             std::to_string(inter) + " / num_hidden_layers " +
                             std::to_string(config.num_hidden_layers) + " / vocab_size " +
                             std::to_string(config.vocab_size) + " are not a valid BERT shape");
  }
  if (config.hidden_act != "gelu") {
    throw std::runtime_error("BERT config: hidden_act " + config.hidden_act + " is not supported (gelu only)");
  }
  const std::string p = weights.count("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  BertModel m;
  m.config = config;
  m.word_embeddings = weight_take(weights, p, "embeddings.word_embeddings.weight", {config.vocab_size, h});
  m.position_embeddings =
      weight_take(weights, p, "embeddings.position_embeddings.weight", {config.max_position_embeddings, h});
  m.token_type_embeddings =
      weight_take(weights, p, "embeddings.token_type_embeddings.weight", {config.type_vocab_size, h});
  m.embed_ln_w = weight_take(weights, p, "embeddings.LayerNorm.weight", {h});
  m.embed_ln_b = weight_take(weights, p, "embeddings.LayerNorm.bias", {h});
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string l = "encoder.layer." + std::to_string(i) + ".";
    BertLayer L;
    L.q_w = weight_take(weights, p, l + "attention.self.query.weight", {h, h}, dtype);
    L.q_b = weight_take(weights, p, l + "attention.self.query.bias", {h}, dtype);
    L.k_w = weight_take(weights, p, l + "attention.self.key.weight", {h, h}, dtype);
    L.k_b = weight_take(weights, p, l + "attention.self.key.bias", {h}, dtype);
    L.v_w = weight_take(weights, p, l + "attention.self.value.weight", {h, h}, dtype);
    L.v_b = weight_take(weights, p, l + "attention.self.value.bias", {h}, dtype);
    L.o_w = weight_take(weights, p, l + "attention.output.dense.weight", {h, h}, dtype);
    L.o_b = weight_take(weights, p, l + "attention.output.dense.bias", {h}, dtype);
    L.attn_ln_w = weight_take(weights, p, l + "attention.output.LayerNorm.weight", {h});
    L.attn_ln_b = weight_take(weights, p, l + "attention.output.LayerNorm.bias", {h});
    L.up_w = weight_take(weights, p, l + "intermediate.dense.weight", {inter, h}, dtype);
    L.up_b = weight_take(weights, p, l + "intermediate.dense.bias", {inter}, dtype);
    L.down_w = weight_take(weights, p, l + "output.dense.weight", {h, inter}, dtype);
    L.down_b = weight_take(weights, p, l + "output.dense.bias", {h}, dtype);
    L.out_ln_w = weight_take(weights, p, l + "output.LayerNorm.weight", {h});
    L.out_ln_b = weight_take(weights, p, l + "output.LayerNorm.bias", {h});
    m.layers.push_back(std::move(L));
  }
  return m;
}

at::Tensor bert_forward(const BertModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  const BertConfig& c = model.config;
  if (input_ids.dim() != 2 || attention_mask.sizes() != input_ids.sizes()) {
    throw std::runtime_error("bert_forward: input_ids " + c10::str(input_ids.sizes()) + " and attention_mask " +
                             c10::str(attention_mask.sizes()) + " must both be [batch, seq]");
  }
  const int64_t batch = input_ids.size(0), seq = input_ids.size(1);
  if (seq > c.max_position_embeddings) {
    throw std::runtime_error("bert_forward: input_ids has " + std::to_string(seq) + " positions, the model " +
                             std::to_string(c.max_position_embeddings));
  }
  const int64_t heads = c.num_attention_heads, head_dim = c.hidden_size / heads;
  at::Tensor x = model.word_embeddings.index_select(0, input_ids.reshape(-1)).view({batch, seq, c.hidden_size});
  x = x + model.position_embeddings.narrow(0, 0, seq).unsqueeze(0) + model.token_type_embeddings[0];
  x = layer_norm(x, model.embed_ln_w, model.embed_ln_b, c.layer_norm_eps);
  // [batch, 1, 1, seq]: 0 for tokens, the most negative float for pads (HF's extended mask)
  const at::Tensor bias =
      (1.0 - attention_mask.to(torch::kFloat32)).mul(std::numeric_limits<float>::lowest()).view({batch, 1, 1, seq});
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  for (const BertLayer& L : model.layers) {
    auto split = [&](const at::Tensor& t) { return t.view({batch, seq, heads, head_dim}).transpose(1, 2); };
    const at::Tensor q = split(linear(x, L.q_w, L.q_b)), k = split(linear(x, L.k_w, L.k_b)),
                     v = split(linear(x, L.v_w, L.v_b));
    // scores and softmax in float32 whatever the projections' dtype
    const at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).to(torch::kFloat32).mul(scale) + bias;  // [b, h, s, s]
    const at::Tensor probs = at::softmax(scores, -1).to(v.scalar_type());
    const at::Tensor ctx = at::matmul(probs, v).transpose(1, 2).reshape({batch, seq, c.hidden_size});
    x = layer_norm(x + linear(ctx, L.o_w, L.o_b).to(torch::kFloat32), L.attn_ln_w, L.attn_ln_b, c.layer_norm_eps);
    const at::Tensor ffn = linear(at::gelu(linear(x, L.up_w, L.up_b)), L.down_w, L.down_b).to(torch::kFloat32);
    x = layer_norm(x + ffn, L.out_ln_w, L.out_ln_b, c.layer_norm_eps);
  }
  return x;
}

at::Tensor bert_pool(const at::Tensor& hidden, const at::Tensor& attention_mask, BertPooling pooling, bool normalize) {
  at::Tensor pooled;
  if (pooling == BertPooling::cls) {
    pooled = hidden.select(1, 0);
  } else {
    const at::Tensor m = attention_mask.to(hidden.scalar_type()).unsqueeze(-1);  // [batch, seq, 1]
    pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
  }
  if (normalize) pooled = pooled / pooled.norm(2, -1, true).clamp_min(1e-12);
  return pooled.contiguous();
}

}  // namespace kmoe
