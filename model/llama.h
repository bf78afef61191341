// The LLaMA-family decoder (LLaMA 2/3, Mistral, Qwen2, SmolLM) as plain tensors and free
// functions, matching HF transformers' eager fp32 path to ~1e-5. Positions always come from
// the attention mask (position = number of real tokens before it), as HF generate() does,
// so left- and right-padded batches give every real token the logits it would get alone.
// The forward is differentiable when grad is enabled: LoRA training runs through the hook.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/linear_hook.h"

namespace kmoe {

struct LlamaLayer {
  at::Tensor input_layernorm;           // [hidden]
  at::Tensor q_proj, k_proj, v_proj;    // [heads*head_dim | kv_heads*head_dim, hidden]
  at::Tensor o_proj;                    // [hidden, heads*head_dim]
  at::Tensor q_bias, k_bias, v_bias;    // [out] or undefined (attention_bias)
  at::Tensor o_bias;                    // [hidden] or undefined (LLaMA with attention_bias only)
  at::Tensor post_attention_layernorm;  // [hidden]
  at::Tensor gate_proj, up_proj;        // [intermediate, hidden]
  at::Tensor down_proj;                 // [hidden, intermediate]
};

struct LlamaModel {
  ModelConfig config;
  at::Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LlamaLayer> layers;
  at::Tensor norm;           // [hidden]
  at::Tensor lm_head;        // [vocab, hidden]; the same tensor as embed_tokens when tied
  at::Tensor rope_inv_freq;  // [head_dim / 2] float32, LLaMA-3 scaling applied
  // A soft prompt (prompt tuning, PEFT's PROMPT_TUNING): [virtual tokens, hidden] input
  // embeddings put before every sequence, or undefined. Every entry point below prepends it
  // when it starts a sequence (nothing cached yet), as real tokens at positions 0..P-1, and
  // returns hidden states and logits of the real tokens only; the KV cache holds both. It
  // may require grad (mode prompt trains it through the forward).
  at::Tensor soft_prompt;
};

// The soft prompt's virtual-token count, 0 without one.
int64_t llama_soft_prompt_length(const LlamaModel& model);
// Sets (or, with an undefined tensor, removes) the soft prompt, moved to the model's device;
// throws unless it is [P >= 1, hidden].
void llama_set_soft_prompt(LlamaModel& model, const at::Tensor& prompt);

// Builds the model from HF-named tensors ("model.layers.3.self_attn.q_proj.weight", ...),
// checking that every expected tensor is there with its shape and that nothing else is.
// Weights are moved to `device` and cast to `dtype` (float32 on CPU, bf16 on CUDA typical).
LlamaModel llama_from_weights(const ModelConfig& config, std::map<std::string, at::Tensor> hf_named_weights,
                              c10::Device device, c10::ScalarType dtype);

// The weight of one projection, for merging/unmerging an adapter in place.
at::Tensor& llama_linear_weight(LlamaModel& model, int64_t layer, LinearModule module);

// Keys and values of every position seen so far, per layer, for incremental decoding.
struct KvCache {
  std::vector<at::Tensor> k, v;  // per layer [batch, kv_heads, cached, head_dim]
  at::Tensor mask;               // [batch, cached] int64, 1 = token, 0 = pad
  int64_t length() const { return mask.defined() ? mask.size(1) : 0; }
};

// input_ids [batch, seq] int64 (the new tokens when `cache` holds earlier ones);
// attention_mask [batch, seq] 1 = token, 0 = pad, or undefined for all ones. Returns
// logits [batch, seq, vocab] float32. Pad positions get finite but meaningless logits.
// `cache` (nullable) is read and extended; `hook` (nullable) adds to every projection.
at::Tensor llama_forward(const LlamaModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                         KvCache* cache = nullptr, const LinearHook* hook = nullptr);

// The final-normed hidden states [batch, seq, hidden] of input_ids [batch, seq] (the input
// of the LM head), for sentence embeddings. attention_mask as in llama_forward.
at::Tensor llama_hidden_states(const LlamaModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                               const LinearHook* hook = nullptr);

// Sequences packed into one row with no padding: ids [total] int64 holds them one after
// another, `lengths` their lengths (summing to total). The projections run on all tokens at
// once; attention runs per sequence, causal, with positions from 0 in each, so every token
// gets the hidden state it gets in a forward of its sequence alone. Returns the final-normed
// hidden states [total, hidden]; differentiable (training without compute on padding). The
// hook sees x as [1, total, in].
at::Tensor llama_hidden_packed(const LlamaModel& model, const at::Tensor& ids, const std::vector<int64_t>& lengths,
                               const LinearHook* hook = nullptr);
// The LM head: hidden [..., hidden] -> float32 logits [..., vocab].
at::Tensor llama_lm_head(const LlamaModel& model, const at::Tensor& hidden);

// log p(continuation[i] | prompt, continuation[:i]) for each i: [len(continuation)] float32
// on the CPU. Under grad mode the result carries the graph (for training losses).
at::Tensor llama_continuation_logprobs(const LlamaModel& model, const std::vector<int64_t>& prompt_ids,
                                       const std::vector<int64_t>& continuation_ids, const LinearHook* hook = nullptr);
// The same for many (prompt, continuation) pairs in one right-padded batch.
std::vector<at::Tensor> llama_continuation_logprobs_batch(
    const LlamaModel& model, const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>& pairs,
    const LinearHook* hook = nullptr);

// Prompts run once, for many continuations and a generation (prefix sharing): the KV cache
// of the right-padded prompt batch and the final-normed hidden state of each prompt's last
// token, which predicts the first token after it. Pad slots in the middle of the cache are
// masked out, and positions come from the mask, so a continuation sees exactly what it would
// see after its prompt alone.
struct PromptPrefill {
  KvCache cache;           // [prompts, kv_heads, longest prompt, head_dim] per layer
  at::Tensor last_hidden;  // [prompts, hidden]
};
// Runs without grad. Throws on an empty prompt.
PromptPrefill llama_prefill(const LlamaModel& model, const std::vector<std::vector<int64_t>>& prompts,
                            const LinearHook* hook = nullptr);
// log p(continuation[i] | prompt, continuation[:i]) for each request (index of a prefilled
// prompt, continuation ids): [len] float32 on the CPU, as llama_continuation_logprobs_batch
// gives for (prompt, continuation), but only continuation tokens run through the model (all
// requests in one right-padded batch over a copy of their prompts' cache rows; the last
// token of a continuation is never fed, as nothing is predicted from it). Runs without grad.
std::vector<at::Tensor> llama_prefix_logprobs(const LlamaModel& model, const PromptPrefill& prefill,
                                              const std::vector<std::pair<int64_t, std::vector<int64_t>>>& requests,
                                              const LinearHook* hook = nullptr);

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;             // 0: greedy (argmax); > 0: sample
  double top_p = 1.0;                   // nucleus sampling, 1 = off
  int64_t top_k = 0;                    // 0 = off
  uint64_t seed = 0;                    // sampling RNG (a CPU torch generator, so results do not depend on device)
  std::vector<int64_t> stop_token_ids;  // a sequence ends after emitting one (it is kept in the output)
};

// New tokens for each prompt (prompts of different lengths run as one right-padded prefill,
// then one token per step over the KV cache). Runs without grad.
std::vector<std::vector<int64_t>> llama_generate(const LlamaModel& model,
                                                 const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerateOptions& options, const LinearHook* hook = nullptr);
// The same from prompts already prefilled (the prefill is consumed: its cache grows).
std::vector<std::vector<int64_t>> llama_generate_prefilled(const LlamaModel& model, PromptPrefill prefill,
                                                           const GenerateOptions& options,
                                                           const LinearHook* hook = nullptr);

}  // namespace kmoe
