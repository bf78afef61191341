// See llama.h. The math follows transformers' modeling_llama.py (eager attention) step by
// step, including where it computes in float32 (RMSNorm, RoPE frequencies, softmax), so fp32
// results agree to rounding. Grouped-query attention reshapes the queries to
// [batch, kv_heads, group, seq, head_dim] and broadcasts the keys instead of repeating them.
#include "model/llama.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "model/shape_text.h"

namespace kmoe {
namespace {

// Takes `name` out of `weights`, checking its shape.
at::Tensor weight_take(std::map<std::string, at::Tensor>& weights, const std::string& name,
                       std::vector<int64_t> expected, c10::Device device, c10::ScalarType dtype) {
  auto it = weights.find(name);
  if (it == weights.end()) throw std::invalid_argument("missing tensor " + name);
  at::Tensor t = std::move(it->second);
  weights.erase(it);
  if (!t.defined()) throw std::invalid_argument("missing tensor " + name + " (undefined)");
  if (t.sizes() != at::IntArrayRef(expected)) {
    throw std::invalid_argument(name + ": expected " + shape_text(expected) + ", got " + shape_text(t.sizes()));
  }
  return t.to(device, dtype).contiguous();
}

// HF's _compute_default_rope_parameters and _compute_llama3_parameters, in float32 as there.
at::Tensor rope_inv_freq_compute(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  at::Tensor inv_freq =
      1.0 / torch::pow(c.rope_theta, torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / double(dim));
  if (c.rope_scaling.type == "none") return inv_freq;
  if (c.rope_scaling.type != "llama3") {
    throw std::invalid_argument("rope_scaling type '" + c.rope_scaling.type + "' is not supported (none, llama3)");
  }
  const auto& s = c.rope_scaling;
  const double old_context_len = double(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_context_len / s.low_freq_factor;
  const double high_freq_wavelen = old_context_len / s.high_freq_factor;
  const at::Tensor wavelen = 2 * M_PI / inv_freq;
  at::Tensor inv_freq_llama = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  const at::Tensor smooth_factor =
      (old_context_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  const at::Tensor smoothed = (1 - smooth_factor) * inv_freq_llama / s.factor + smooth_factor * inv_freq_llama;
  const at::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(is_medium, smoothed, inv_freq_llama);
}

void config_check(const ModelConfig& c) {
  const auto positive = [](int64_t v, const char* what) {
    if (v <= 0) throw std::invalid_argument(std::string("model config: ") + what + " must be positive");
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.num_key_value_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  if (c.head_dim % 2 != 0) throw std::invalid_argument("model config: head_dim must be even for RoPE");
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw std::invalid_argument("model config: num_key_value_heads must divide num_attention_heads");
  }
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor xf = x.to(torch::kFloat32);
  const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * torch::rsqrt(variance + eps)).to(x.scalar_type());
}

// The RECORD_USER_SCOPE names (kmoe::projection, kmoe::attention, kmoe::lm_head) let a
// profiler say where time goes (bench/profile_bench.cpp); they cost nothing unprofiled.
at::Tensor linear_apply(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const LinearHook* hook,
                        int64_t layer, LinearModule module) {
  RECORD_USER_SCOPE("kmoe::projection");
  at::Tensor y = bias.defined() ? at::linear(x, weight, bias) : at::linear(x, weight);
  if (hook) {
    const at::Tensor delta = hook->delta(layer, module, x);
    if (delta.defined()) y = y + delta;
  }
  return y;
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor mlp_apply(const at::Tensor& y, const LlamaLayer& L, const LinearHook* hook, int64_t l) {
  const at::Tensor gate = linear_apply(y, L.gate_proj, at::Tensor(), hook, l, LinearModule::gate_proj);
  const at::Tensor up = linear_apply(y, L.up_proj, at::Tensor(), hook, l, LinearModule::up_proj);
  return linear_apply(torch::silu(gate) * up, L.down_proj, at::Tensor(), hook, l, LinearModule::down_proj);
}

// input_ids [batch, seq] -> final-normed hidden [batch, seq, hidden].
at::Tensor llama_hidden(const LlamaModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                        KvCache* cache, const LinearHook* hook) {
  const ModelConfig& c = model.config;
  const c10::Device device = model.embed_tokens.device();
  const c10::ScalarType dtype = model.embed_tokens.scalar_type();
  if (input_ids.dim() != 2 || input_ids.scalar_type() != torch::kInt64) {
    throw std::invalid_argument("llama_forward: input_ids must be [batch, seq] int64, got " +
                                shape_text(input_ids.sizes()) + " " +
                                std::string(c10::toString(input_ids.scalar_type())));
  }
  const int64_t batch = input_ids.size(0);
  if (input_ids.size(1) == 0) throw std::invalid_argument("llama_forward: empty sequence");
  const at::Tensor ids = input_ids.to(device);
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= c.vocab_size) {
    throw std::invalid_argument("llama_forward: token id " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                                std::to_string(c.vocab_size) + ")");
  }
  at::Tensor new_mask =
      torch::ones({batch, input_ids.size(1)}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  if (attention_mask.defined()) {
    if (attention_mask.sizes() != input_ids.sizes()) {
      throw std::invalid_argument("llama_forward: attention_mask " + shape_text(attention_mask.sizes()) +
                                  " does not match input_ids " + shape_text(input_ids.sizes()));
    }
    new_mask = attention_mask.to(device, torch::kInt64);
  }
  const int64_t past = cache ? cache->length() : 0;
  // The soft prompt's virtual tokens come first, as real tokens, when nothing is cached yet.
  const int64_t n_virtual = past == 0 ? llama_soft_prompt_length(model) : 0;
  at::Tensor h = at::embedding(model.embed_tokens, ids);  // [batch, seq, hidden]
  if (n_virtual > 0) {
    h = torch::cat({model.soft_prompt.to(dtype).unsqueeze(0).expand({batch, n_virtual, c.hidden_size}), h}, 1);
    new_mask = torch::cat({torch::ones({batch, n_virtual}, new_mask.options()), new_mask}, 1);
  }
  const int64_t seq = h.size(1);
  if (cache && past > 0 && cache->mask.size(0) != batch) {
    throw std::invalid_argument("llama_forward: batch " + std::to_string(batch) + " does not match the KV cache's " +
                                std::to_string(cache->mask.size(0)));
  }
  const at::Tensor full_mask = past > 0 ? torch::cat({cache->mask, new_mask}, 1) : new_mask;  // [batch, past+seq]
  const int64_t total = past + seq;

  // position = number of real tokens before this one (HF: cumsum(mask) - 1); pads clamp to 0.
  const at::Tensor positions = (full_mask.cumsum(1) - 1).clamp_min(0).narrow(1, past, seq);    // [batch, seq]
  const at::Tensor freqs = positions.to(torch::kFloat32).unsqueeze(-1) * model.rope_inv_freq;  // [b, s, d/2]
  const at::Tensor emb = torch::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().to(dtype).unsqueeze(1);  // [batch, 1, seq, head_dim]
  const at::Tensor sin = emb.sin().to(dtype).unsqueeze(1);

  // allowed [batch, 1, 1, seq, past+seq]: causal and not a pad key.
  const at::Tensor query_pos = torch::arange(past, total, torch::TensorOptions().dtype(torch::kInt64).device(device));
  const at::Tensor key_pos = torch::arange(total, torch::TensorOptions().dtype(torch::kInt64).device(device));
  const at::Tensor causal = key_pos.unsqueeze(0) <= query_pos.unsqueeze(1);  // [seq, total]
  const at::Tensor allowed = causal.unsqueeze(0).logical_and(full_mask.unsqueeze(1).to(torch::kBool));
  const at::Tensor blocked = allowed.logical_not().view({batch, 1, 1, seq, total});
  // A finite fill, like HF's finfo.min: a query with no allowed key (a leading pad) gets a
  // uniform average instead of NaN, which would leak through 0-weight products into real rows.
  const double lowest = dtype == torch::kFloat64    ? std::numeric_limits<double>::lowest()
                        : dtype == torch::kHalf     ? double(std::numeric_limits<c10::Half>::lowest())
                        : dtype == torch::kBFloat16 ? double(std::numeric_limits<c10::BFloat16>::lowest())
                                                    : double(std::numeric_limits<float>::lowest());
  // The mask as an additive bias, made once for every layer: each layer adds it to its scores
  // in place (the scale is in q), one pass over the scores instead of a scale and a fill.
  const at::Tensor bias = torch::zeros(blocked.sizes(), torch::TensorOptions().dtype(dtype).device(device))
                              .masked_fill_(blocked, lowest);

  const int64_t heads = c.num_attention_heads, kv_heads = c.num_key_value_heads, head_dim = c.head_dim;
  const int64_t group = heads / kv_heads;
  const double inv_scale = 1.0 / std::sqrt(double(head_dim));
  if (cache && cache->k.empty()) {
    cache->k.resize(c.num_hidden_layers);
    cache->v.resize(c.num_hidden_layers);
  }

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LlamaLayer& L = model.layers[l];
    const at::Tensor x = rms_norm(h, L.input_layernorm, c.rms_norm_eps);
    at::Tensor q = linear_apply(x, L.q_proj, L.q_bias, hook, l, LinearModule::q_proj);
    at::Tensor k = linear_apply(x, L.k_proj, L.k_bias, hook, l, LinearModule::k_proj);
    at::Tensor v = linear_apply(x, L.v_proj, L.v_bias, hook, l, LinearModule::v_proj);
    q = q.view({batch, seq, heads, head_dim}).transpose(1, 2);  // [batch, heads, seq, head_dim]
    k = k.view({batch, seq, kv_heads, head_dim}).transpose(1, 2);
    v = v.view({batch, seq, kv_heads, head_dim}).transpose(1, 2);
    q = (q * cos + rotate_half(q) * sin) * inv_scale;
    k = k * cos + rotate_half(k) * sin;
    if (cache) {
      if (past > 0) {
        k = torch::cat({cache->k[l], k}, 2);
        v = torch::cat({cache->v[l], v}, 2);
      }
      cache->k[l] = k;
      cache->v[l] = v;
    }
    at::Tensor attn;
    {
      RECORD_USER_SCOPE("kmoe::attention");
      // head h uses kv head h / group, as HF's repeat_kv.
      const at::Tensor qg = q.reshape({batch, kv_heads, group, seq, head_dim});
      // [b, kv, g, seq, total]; matmul saves its inputs, not its output, so the bias may go in place
      const at::Tensor scores = torch::matmul(qg, k.unsqueeze(2).transpose(-1, -2)).add_(bias);
      const at::Tensor probs = torch::softmax(scores, -1, torch::kFloat32).to(dtype);
      attn = torch::matmul(probs, v.unsqueeze(2))  // [b, kv, g, seq, head_dim]
                 .reshape({batch, heads, seq, head_dim})
                 .transpose(1, 2)
                 .reshape({batch, seq, heads * head_dim});
    }
    h = h + linear_apply(attn, L.o_proj, L.o_bias, hook, l, LinearModule::o_proj);

    h = h + mlp_apply(rms_norm(h, L.post_attention_layernorm, c.rms_norm_eps), L, hook, l);
  }
  if (cache) cache->mask = full_mask;
  if (n_virtual > 0) h = h.narrow(1, n_virtual, seq - n_virtual);
  return rms_norm(h, model.norm, c.rms_norm_eps);
}

// logits [batch, vocab] float32 on the CPU -> next token [batch], HF's warper order:
// temperature, top-k, top-p.
at::Tensor token_choose(at::Tensor logits, const GenerateOptions& o, at::Generator& gen) {
  if (o.temperature <= 0) return logits.argmax(-1);
  logits = logits / o.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < logits.size(-1)) {
    const at::Tensor kth = std::get<0>(logits.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/false);
    at::Tensor remove = sorted.softmax(-1).cumsum(-1) <= (1 - o.top_p);
    remove.narrow(-1, remove.size(-1) - 1, 1).fill_(false);  // keep at least the most likely token
    logits = logits.masked_fill(remove.scatter(-1, order, remove), neg_inf);
  }
  return torch::multinomial(logits.softmax(-1), 1, /*replacement=*/false, gen).squeeze(-1);
}

}  // namespace

LlamaModel llama_from_weights(const ModelConfig& config, std::map<std::string, at::Tensor> w, c10::Device device,
                              c10::ScalarType dtype) {
  config_check(config);
  const ModelConfig& c = config;
  LlamaModel m;
  m.config = c;
  const int64_t hid = c.hidden_size, q_out = c.num_attention_heads * c.head_dim,
                kv_out = c.num_key_value_heads * c.head_dim, inter = c.intermediate_size;
  const bool o_bias = c.attention_bias && c.architecture != "qwen2";
  m.embed_tokens = weight_take(w, "model.embed_tokens.weight", {c.vocab_size, hid}, device, dtype);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LlamaLayer L;
    L.input_layernorm = weight_take(w, p + "input_layernorm.weight", {hid}, device, dtype);
    L.q_proj = weight_take(w, p + "self_attn.q_proj.weight", {q_out, hid}, device, dtype);
    L.k_proj = weight_take(w, p + "self_attn.k_proj.weight", {kv_out, hid}, device, dtype);
    L.v_proj = weight_take(w, p + "self_attn.v_proj.weight", {kv_out, hid}, device, dtype);
    L.o_proj = weight_take(w, p + "self_attn.o_proj.weight", {hid, q_out}, device, dtype);
    if (c.attention_bias) {
      L.q_bias = weight_take(w, p + "self_attn.q_proj.bias", {q_out}, device, dtype);
      L.k_bias = weight_take(w, p + "self_attn.k_proj.bias", {kv_out}, device, dtype);
      L.v_bias = weight_take(w, p + "self_attn.v_proj.bias", {kv_out}, device, dtype);
    }
    if (o_bias) L.o_bias = weight_take(w, p + "self_attn.o_proj.bias", {hid}, device, dtype);
    L.post_attention_layernorm = weight_take(w, p + "post_attention_layernorm.weight", {hid}, device, dtype);
    L.gate_proj = weight_take(w, p + "mlp.gate_proj.weight", {inter, hid}, device, dtype);
    L.up_proj = weight_take(w, p + "mlp.up_proj.weight", {inter, hid}, device, dtype);
    L.down_proj = weight_take(w, p + "mlp.down_proj.weight", {hid, inter}, device, dtype);
    m.layers.push_back(std::move(L));
  }
  m.norm = weight_take(w, "model.norm.weight", {hid}, device, dtype);
  if (c.tie_word_embeddings) {
    w.erase("lm_head.weight");  // HF ties it to the embedding whatever the file holds
    m.lm_head = m.embed_tokens;
  } else {
    m.lm_head = weight_take(w, "lm_head.weight", {c.vocab_size, hid}, device, dtype);
  }
  for (const auto& [name, t] : w) {
    const std::string suffix = "rotary_emb.inv_freq";  // a buffer older checkpoints saved
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) continue;
    throw std::invalid_argument("unexpected tensor " + name + " (not part of a " + c.architecture + " model with " +
                                std::to_string(c.num_hidden_layers) + " layers" +
                                (c.attention_bias ? "" : " without attention bias") + ")");
  }
  m.rope_inv_freq = rope_inv_freq_compute(c).to(device);
  return m;
}

at::Tensor& llama_linear_weight(LlamaModel& model, int64_t layer, LinearModule module) {
  if (layer < 0 || layer >= static_cast<int64_t>(model.layers.size())) {
    throw std::out_of_range("llama_linear_weight: layer " + std::to_string(layer) + " outside [0, " +
                            std::to_string(model.layers.size()) + ")");
  }
  LlamaLayer& L = model.layers[layer];
  switch (module) {
    case LinearModule::q_proj:
      return L.q_proj;
    case LinearModule::k_proj:
      return L.k_proj;
    case LinearModule::v_proj:
      return L.v_proj;
    case LinearModule::o_proj:
      return L.o_proj;
    case LinearModule::gate_proj:
      return L.gate_proj;
    case LinearModule::up_proj:
      return L.up_proj;
    case LinearModule::down_proj:
      return L.down_proj;
  }
  throw std::invalid_argument("llama_linear_weight: bad module");
}

at::Tensor llama_lm_head(const LlamaModel& model, const at::Tensor& hidden) {
  RECORD_USER_SCOPE("kmoe::lm_head");
  return at::linear(hidden, model.lm_head).to(torch::kFloat32);
}

at::Tensor llama_hidden_packed(const LlamaModel& model, const at::Tensor& ids, const std::vector<int64_t>& lengths,
                               const LinearHook* hook) {
  const ModelConfig& c = model.config;
  const c10::Device device = model.embed_tokens.device();
  const c10::ScalarType dtype = model.embed_tokens.scalar_type();
  if (ids.dim() != 1 || ids.scalar_type() != torch::kInt64)
    throw std::invalid_argument("llama_hidden_packed: ids must be [total] int64, got " + shape_text(ids.sizes()));
  const int64_t n_virtual = llama_soft_prompt_length(model);
  int64_t total = 0, real_total = 0;
  std::vector<int64_t> positions, real_rows;  // real_rows: the packed rows of real tokens
  for (const int64_t n : lengths) {
    if (n <= 0) throw std::invalid_argument("llama_hidden_packed: a sequence of length " + std::to_string(n));
    for (int64_t t = 0; t < n_virtual + n; ++t) positions.push_back(t);
    for (int64_t t = 0; t < n; ++t) real_rows.push_back(total + n_virtual + t);
    total += n_virtual + n;
    real_total += n;
  }
  if (real_total != ids.size(0)) {
    throw std::invalid_argument("llama_hidden_packed: lengths sum to " + std::to_string(real_total) + ", ids hold " +
                                std::to_string(ids.size(0)));
  }
  const at::Tensor dev_ids = ids.to(device);
  const int64_t lo = dev_ids.min().item<int64_t>(), hi = dev_ids.max().item<int64_t>();
  if (lo < 0 || hi >= c.vocab_size) {
    throw std::invalid_argument("llama_hidden_packed: token id " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                                std::to_string(c.vocab_size) + ")");
  }
  const at::Tensor freqs =
      torch::tensor(positions, torch::kInt64).to(device, torch::kFloat32).unsqueeze(-1) * model.rope_inv_freq;
  const at::Tensor emb = torch::cat({freqs, freqs}, -1);  // [total, head_dim]
  const at::Tensor cos = emb.cos().to(dtype), sin = emb.sin().to(dtype);
  const double lowest = dtype == torch::kBFloat16 ? double(std::numeric_limits<c10::BFloat16>::lowest())
                        : dtype == torch::kHalf   ? double(std::numeric_limits<c10::Half>::lowest())
                                                  : double(std::numeric_limits<float>::lowest());
  const int64_t heads = c.num_attention_heads, kv_heads = c.num_key_value_heads, head_dim = c.head_dim;
  const int64_t group = heads / kv_heads;
  const double inv_scale = 1.0 / std::sqrt(double(head_dim));
  // One additive causal mask per distinct length, for the `group` query heads of a kv head
  // stacked: bias[r][j] = lowest where j > r % n, else 0 ([group * n, n]). The scores are
  // one GEMM accumulated into it (baddbmm), with the scale already in q: no pass over the
  // [n, n] scores for the scale or the mask, forward or backward.
  std::map<int64_t, at::Tensor> causal_bias;
  std::vector<int64_t> spans;  // each sequence's rows, virtual tokens included
  for (const int64_t n : lengths) spans.push_back(n_virtual + n);
  for (const int64_t n : spans) {
    if (!causal_bias.count(n)) {
      const auto options = torch::TensorOptions().dtype(dtype).device(device);
      const at::Tensor blocked = torch::ones({n, n}, options.dtype(torch::kBool)).triu(1);
      causal_bias[n] = torch::zeros({n, n}, options).masked_fill(blocked, lowest).repeat({group, 1});
    }
  }

  at::Tensor h = at::embedding(model.embed_tokens, dev_ids);  // [real total, hidden]
  if (n_virtual > 0) {
    const at::Tensor prompt = model.soft_prompt.to(dtype);
    std::vector<at::Tensor> rows;
    int64_t start = 0;
    for (const int64_t n : lengths) {
      rows.push_back(prompt);
      rows.push_back(h.narrow(0, start, n));
      start += n;
    }
    h = torch::cat(rows, 0);
  }
  h = h.unsqueeze(0);  // [1, total, hidden]
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LlamaLayer& L = model.layers[l];
    const at::Tensor x = rms_norm(h, L.input_layernorm, c.rms_norm_eps);
    // [total, heads, head_dim] -> [heads, total, head_dim]
    at::Tensor q = linear_apply(x, L.q_proj, L.q_bias, hook, l, LinearModule::q_proj)
                       .view({total, heads, head_dim})
                       .transpose(0, 1);
    at::Tensor k = linear_apply(x, L.k_proj, L.k_bias, hook, l, LinearModule::k_proj)
                       .view({total, kv_heads, head_dim})
                       .transpose(0, 1);
    const at::Tensor v = linear_apply(x, L.v_proj, L.v_bias, hook, l, LinearModule::v_proj)
                             .view({total, kv_heads, head_dim})
                             .transpose(0, 1);
    q = (q * cos + rotate_half(q) * sin) * inv_scale;
    k = k * cos + rotate_half(k) * sin;
    std::vector<at::Tensor> parts;
    {
      RECORD_USER_SCOPE("kmoe::attention");
      int64_t start = 0;
      for (const int64_t n : spans) {
        // head h uses kv head h / group (HF's repeat_kv): a kv head's query heads as one GEMM
        const at::Tensor qs = q.narrow(1, start, n).reshape({kv_heads, group * n, head_dim});
        const at::Tensor ks = k.narrow(1, start, n);  // [kv, n, head_dim]
        const at::Tensor vs = v.narrow(1, start, n);
        const at::Tensor scores = at::baddbmm(causal_bias.at(n), qs, ks.transpose(-1, -2));  // [kv, g * n, n]
        const at::Tensor probs = torch::softmax(scores, -1, torch::kFloat32).to(dtype);
        parts.push_back(at::bmm(probs, vs).view({heads, n, head_dim}));
        start += n;
      }
    }
    const at::Tensor attn = torch::cat(parts, 1).transpose(0, 1).reshape({1, total, heads * head_dim});
    h = h + linear_apply(attn, L.o_proj, L.o_bias, hook, l, LinearModule::o_proj);
    h = h + mlp_apply(rms_norm(h, L.post_attention_layernorm, c.rms_norm_eps), L, hook, l);
  }
  h = h.squeeze(0);
  if (n_virtual > 0) h = h.index_select(0, torch::tensor(real_rows, torch::kInt64).to(device));
  return rms_norm(h, model.norm, c.rms_norm_eps);
}

int64_t llama_soft_prompt_length(const LlamaModel& model) {
  return model.soft_prompt.defined() ? model.soft_prompt.size(0) : 0;
}

void llama_set_soft_prompt(LlamaModel& model, const at::Tensor& prompt) {
  if (!prompt.defined()) {
    model.soft_prompt = at::Tensor();
    return;
  }
  if (prompt.dim() != 2 || prompt.size(1) != model.config.hidden_size || prompt.size(0) == 0) {
    throw std::invalid_argument("soft prompt: expected [virtual tokens, " + std::to_string(model.config.hidden_size) +
                                "], got " + shape_text(prompt.sizes()));
  }
  model.soft_prompt = prompt.device() == model.embed_tokens.device() ? prompt : prompt.to(model.embed_tokens.device());
}

at::Tensor llama_hidden_states(const LlamaModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                               const LinearHook* hook) {
  return llama_hidden(model, input_ids, attention_mask, nullptr, hook);
}

at::Tensor llama_forward(const LlamaModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                         KvCache* cache, const LinearHook* hook) {
  return llama_lm_head(model, llama_hidden(model, input_ids, attention_mask, cache, hook));
}

std::vector<at::Tensor> llama_continuation_logprobs_batch(
    const LlamaModel& model, const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>& pairs,
    const LinearHook* hook) {
  std::vector<at::Tensor> out(pairs.size());
  if (pairs.empty()) return out;
  int64_t longest = 0;
  for (const auto& [prompt, cont] : pairs) {
    if (prompt.empty())
      throw std::invalid_argument("llama_continuation_logprobs: empty prompt (nothing to condition on)");
    longest = std::max<int64_t>(longest, prompt.size() + cont.size());
  }
  const int64_t batch = pairs.size();
  at::Tensor ids = torch::zeros({batch, longest}, torch::kInt64);
  at::Tensor mask = torch::zeros({batch, longest}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t t = 0;
    for (const auto* part : {&pairs[b].first, &pairs[b].second}) {
      for (const int64_t id : *part) {
        ids_a[b][t] = id;
        mask_a[b][t++] = 1;
      }
    }
  }
  const at::Tensor hidden = llama_hidden(model, ids, mask, nullptr, hook);  // [batch, longest, hidden]
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t p = pairs[b].first.size(), n = pairs[b].second.size();
    if (n == 0) {
      out[b] = torch::zeros({0}, torch::kFloat32);
      continue;
    }
    // the hidden state at position i predicts token i + 1
    const at::Tensor logits = llama_lm_head(model, hidden[b].narrow(0, p - 1, n));  // [n, vocab]
    const at::Tensor targets = ids[b].narrow(0, p, n).to(logits.device());
    out[b] = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).to(torch::kCPU);
  }
  return out;
}

at::Tensor llama_continuation_logprobs(const LlamaModel& model, const std::vector<int64_t>& prompt_ids,
                                       const std::vector<int64_t>& continuation_ids, const LinearHook* hook) {
  return llama_continuation_logprobs_batch(model, {{prompt_ids, continuation_ids}}, hook)[0];
}

namespace {

// Right-padded [batch, longest] ids and mask of token lists.
std::pair<at::Tensor, at::Tensor> right_padded(const std::vector<const std::vector<int64_t>*>& rows) {
  int64_t longest = 0;
  for (const auto* r : rows) longest = std::max<int64_t>(longest, r->size());
  const int64_t batch = rows.size();
  at::Tensor ids = torch::zeros({batch, longest}, torch::kInt64);
  at::Tensor mask = torch::zeros({batch, longest}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t t = 0; t < rows[b]->size(); ++t) {
      ids_a[b][t] = (*rows[b])[t];
      mask_a[b][t] = 1;
    }
  }
  return {ids, mask};
}

}  // namespace

PromptPrefill llama_prefill(const LlamaModel& model, const std::vector<std::vector<int64_t>>& prompts,
                            const LinearHook* hook) {
  torch::NoGradGuard no_grad;
  if (prompts.empty()) throw std::invalid_argument("llama_prefill: no prompt");
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<int64_t> last;
  for (const auto& p : prompts) {
    if (p.empty()) throw std::invalid_argument("llama_prefill: empty prompt (nothing to condition on)");
    rows.push_back(&p);
    last.push_back(static_cast<int64_t>(p.size()) - 1);
  }
  const auto [ids, mask] = right_padded(rows);
  PromptPrefill out;
  const at::Tensor hidden = llama_hidden(model, ids, mask, &out.cache, hook);  // [batch, longest, hidden]
  const at::Tensor at_last = torch::tensor(last, torch::kInt64).to(hidden.device());
  const at::Tensor batch_index = torch::arange(hidden.size(0), at_last.options());
  out.last_hidden = hidden.index({batch_index, at_last});
  return out;
}

std::vector<at::Tensor> llama_prefix_logprobs(const LlamaModel& model, const PromptPrefill& prefill,
                                              const std::vector<std::pair<int64_t, std::vector<int64_t>>>& requests,
                                              const LinearHook* hook) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> out(requests.size());
  const int64_t n_prompts = prefill.last_hidden.size(0);
  // log-softmax after each prompt these requests use, once per prompt: it scores every
  // continuation's first token (row first_row[p] of first_logp)
  std::vector<int64_t> first_row(n_prompts, -1), used;
  for (const auto& [p, cont] : requests) {
    if (p >= 0 && p < n_prompts && !cont.empty() && first_row[p] < 0) {
      first_row[p] = static_cast<int64_t>(used.size());
      used.push_back(p);
    }
  }
  at::Tensor first_logp;
  if (!used.empty()) {
    const at::Tensor rows = torch::tensor(used, torch::kInt64).to(prefill.last_hidden.device());
    first_logp = llama_lm_head(model, prefill.last_hidden.index_select(0, rows)).log_softmax(-1).to(torch::kCPU);
  }
  std::vector<int64_t> fed;  // requests with 2+ tokens: their tokens but the last run through the model
  std::vector<std::vector<int64_t>> inputs;
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& [p, cont] = requests[r];
    if (p < 0 || p >= n_prompts) {
      throw std::out_of_range("llama_prefix_logprobs: prompt " + std::to_string(p) + " outside [0, " +
                              std::to_string(n_prompts) + ")");
    }
    if (cont.size() >= 2) {
      fed.push_back(static_cast<int64_t>(r));
      inputs.emplace_back(cont.begin(), cont.end() - 1);
    }
  }
  at::Tensor rest;  // [fed, longest input, hidden]: the hidden state after each fed token
  if (!fed.empty()) {
    std::vector<const std::vector<int64_t>*> rows;
    std::vector<int64_t> prompt_of;
    for (size_t k = 0; k < fed.size(); ++k) {
      rows.push_back(&inputs[k]);
      prompt_of.push_back(requests[fed[k]].first);
    }
    const auto [ids, mask] = right_padded(rows);
    const at::Tensor index = torch::tensor(prompt_of, torch::kInt64).to(prefill.last_hidden.device());
    KvCache cache;  // each fed request's copy of its prompt's rows
    for (size_t l = 0; l < prefill.cache.k.size(); ++l) {
      cache.k.push_back(prefill.cache.k[l].index_select(0, index));
      cache.v.push_back(prefill.cache.v[l].index_select(0, index));
    }
    cache.mask = prefill.cache.mask.index_select(0, index);
    rest = llama_hidden(model, ids, mask, &cache, hook);
  }
  // One LM head over every position that predicts a continuation token: the head's weight
  // is read once, not once per request.
  at::Tensor rest_logp;  // [positions] log p of each fed request's tokens 2.., in request order
  if (rest.defined()) {
    std::vector<int64_t> flat, targets;
    const int64_t width = rest.size(1);
    for (size_t k = 0; k < fed.size(); ++k) {
      const auto& cont = requests[fed[k]].second;
      for (size_t t = 1; t < cont.size(); ++t) {
        flat.push_back(static_cast<int64_t>(k) * width + static_cast<int64_t>(t) - 1);
        targets.push_back(cont[t]);
      }
    }
    const at::Tensor at_rows = torch::tensor(flat, torch::kInt64).to(rest.device());
    const at::Tensor logits = llama_lm_head(model, rest.reshape({-1, rest.size(2)}).index_select(0, at_rows));
    rest_logp = logits.log_softmax(-1)
                    .gather(-1, torch::tensor(targets, torch::kInt64).to(logits.device()).unsqueeze(-1))
                    .squeeze(-1)
                    .to(torch::kCPU);
  }
  int64_t offset = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& [p, cont] = requests[r];
    if (cont.empty()) {
      out[r] = torch::zeros({0}, torch::kFloat32);
      continue;
    }
    const int64_t n = static_cast<int64_t>(cont.size());
    at::Tensor lp = torch::empty({n}, torch::kFloat32);
    lp.data_ptr<float>()[0] = first_logp[first_row[p]][cont[0]].item<float>();
    if (n >= 2) {
      lp.narrow(0, 1, n - 1).copy_(rest_logp.narrow(0, offset, n - 1));
      offset += n - 1;
    }
    out[r] = lp;
  }
  return out;
}

std::vector<std::vector<int64_t>> llama_generate(const LlamaModel& model,
                                                 const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerateOptions& options, const LinearHook* hook) {
  if (prompts.empty() || options.max_new_tokens <= 0) return std::vector<std::vector<int64_t>>(prompts.size());
  for (const auto& p : prompts) {
    if (p.empty()) throw std::invalid_argument("llama_generate: empty prompt");
  }
  return llama_generate_prefilled(model, llama_prefill(model, prompts, hook), options, hook);
}

std::vector<std::vector<int64_t>> llama_generate_prefilled(const LlamaModel& model, PromptPrefill prefill,
                                                           const GenerateOptions& options, const LinearHook* hook) {
  torch::NoGradGuard no_grad;
  const int64_t batch = prefill.last_hidden.size(0);
  std::vector<std::vector<int64_t>> out(batch);
  if (batch == 0 || options.max_new_tokens <= 0) return out;
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  KvCache& cache = prefill.cache;
  at::Tensor hidden = prefill.last_hidden;  // [live rows, hidden]: predicts each row's next token
  std::vector<int64_t> live(batch);         // the request each row of `hidden` and the cache belongs to
  for (int64_t b = 0; b < batch; ++b) live[b] = b;
  const auto& stop = options.stop_token_ids;
  for (int64_t step = 0;; ++step) {
    const at::Tensor logits = llama_lm_head(model, hidden).to(torch::kCPU);
    at::Tensor next = token_choose(logits, options, gen).to(torch::kInt64).contiguous();  // [live rows]
    const int64_t* next_p = next.data_ptr<int64_t>();
    std::vector<int64_t> keep;  // rows still generating
    for (size_t r = 0; r < live.size(); ++r) {
      out[live[r]].push_back(next_p[r]);
      if (std::find(stop.begin(), stop.end(), next_p[r]) == stop.end()) keep.push_back(static_cast<int64_t>(r));
    }
    if (keep.empty() || step + 1 >= options.max_new_tokens) break;
    if (keep.size() < live.size()) {
      // Finished rows leave the batch (cache and all): rows are independent, so what the
      // others generate is unchanged, and the rest of the batch no longer pays for them.
      const at::Tensor rows = torch::tensor(keep, torch::kInt64);
      std::vector<int64_t> still;
      for (const int64_t r : keep) still.push_back(live[r]);
      live = std::move(still);
      next = next.index_select(0, rows);
      const at::Tensor on_device = rows.to(cache.mask.device());
      for (size_t l = 0; l < cache.k.size(); ++l) {
        cache.k[l] = cache.k[l].index_select(0, on_device);
        cache.v[l] = cache.v[l].index_select(0, on_device);
      }
      cache.mask = cache.mask.index_select(0, on_device);
    }
    hidden = llama_hidden(model, next.unsqueeze(1), at::Tensor(), &cache, hook).select(1, 0);
  }
  return out;
}

}  // namespace kmoe
