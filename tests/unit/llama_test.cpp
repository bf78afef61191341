#include "model/llama.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

ModelConfig tiny_config(bool qwen2 = false) {
  ModelConfig c;
  c.architecture = qwen2 ? "qwen2" : "llama";
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.attention_bias = qwen2;
  c.rms_norm_eps = 1e-5;
  return c;
}

std::map<std::string, at::Tensor> tiny_weights(const ModelConfig& c) {
  torch::manual_seed(3);
  std::map<std::string, at::Tensor> w;
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim,
                i = c.intermediate_size;
  const auto r = [](std::vector<int64_t> shape) { return 0.3 * torch::randn(shape); };
  w["model.embed_tokens.weight"] = r({c.vocab_size, h});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w[p + "input_layernorm.weight"] = 1 + r({h});
    w[p + "self_attn.q_proj.weight"] = r({q, h});
    w[p + "self_attn.k_proj.weight"] = r({kv, h});
    w[p + "self_attn.v_proj.weight"] = r({kv, h});
    w[p + "self_attn.o_proj.weight"] = r({h, q});
    if (c.attention_bias) {
      w[p + "self_attn.q_proj.bias"] = r({q});
      w[p + "self_attn.k_proj.bias"] = r({kv});
      w[p + "self_attn.v_proj.bias"] = r({kv});
    }
    w[p + "post_attention_layernorm.weight"] = 1 + r({h});
    w[p + "mlp.gate_proj.weight"] = r({i, h});
    w[p + "mlp.up_proj.weight"] = r({i, h});
    w[p + "mlp.down_proj.weight"] = r({h, i});
  }
  w["model.norm.weight"] = 1 + r({h});
  w["lm_head.weight"] = r({c.vocab_size, h});
  return w;
}

LlamaModel tiny_model(bool qwen2 = false) {
  const ModelConfig c = tiny_config(qwen2);
  return llama_from_weights(c, tiny_weights(c), torch::kCPU, torch::kFloat32);
}

TEST(Llama, MissingTensorIsNamed) {
  const ModelConfig c = tiny_config();
  auto w = tiny_weights(c);
  w.erase("model.layers.1.mlp.up_proj.weight");
  EXPECT_EQ(error_of([&] { llama_from_weights(c, w, torch::kCPU, torch::kFloat32); }),
            "missing tensor model.layers.1.mlp.up_proj.weight");
}

TEST(Llama, WrongShapeIsNamedWithBothShapes) {
  const ModelConfig c = tiny_config();
  auto w = tiny_weights(c);
  w["model.layers.1.self_attn.k_proj.weight"] = torch::zeros({32, 32});
  EXPECT_EQ(error_of([&] { llama_from_weights(c, w, torch::kCPU, torch::kFloat32); }),
            "model.layers.1.self_attn.k_proj.weight: expected [16, 32], got [32, 32]");
}

TEST(Llama, UnexpectedTensorIsNamed) {
  const ModelConfig c = tiny_config();
  auto w = tiny_weights(c);
  w["model.layers.2.self_attn.q_proj.weight"] = torch::zeros({32, 32});  // a third layer the config lacks
  const std::string msg = error_of([&] { llama_from_weights(c, w, torch::kCPU, torch::kFloat32); });
  EXPECT_NE(msg.find("unexpected tensor model.layers.2.self_attn.q_proj.weight"), std::string::npos) << msg;
}

TEST(Llama, Qwen2NeedsQkvBiases) {
  const ModelConfig c = tiny_config(true);
  auto w = tiny_weights(c);
  w.erase("model.layers.0.self_attn.v_proj.bias");
  EXPECT_EQ(error_of([&] { llama_from_weights(c, w, torch::kCPU, torch::kFloat32); }),
            "missing tensor model.layers.0.self_attn.v_proj.bias");
}

TEST(Llama, TiedHeadSharesTheEmbedding) {
  ModelConfig c = tiny_config();
  c.tie_word_embeddings = true;
  auto w = tiny_weights(c);
  w.erase("lm_head.weight");
  const LlamaModel m = llama_from_weights(c, w, torch::kCPU, torch::kFloat32);
  EXPECT_TRUE(m.lm_head.is_same(m.embed_tokens));
}

TEST(Llama, Llama3RopeScalingOnlySlowsLowFrequencies) {
  ModelConfig c = tiny_config();
  c.rope_theta = 500000.0;
  const LlamaModel plain = llama_from_weights(c, tiny_weights(c), torch::kCPU, torch::kFloat32);
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8;
  c.rope_scaling.original_max_position_embeddings = 256;
  const LlamaModel scaled = llama_from_weights(c, tiny_weights(c), torch::kCPU, torch::kFloat32);
  // head_dim 8: wavelengths 2π, ~167, ~4400, ~118000; kept below 256/4 = 64, divided by the
  // factor above 256/1, smoothly interpolated between
  const auto f = [](const LlamaModel& m, int64_t i) { return m.rope_inv_freq[i].item<float>(); };
  EXPECT_FLOAT_EQ(f(scaled, 0), f(plain, 0));
  EXPECT_GT(f(scaled, 1), f(plain, 1) / 8 * 1.01);
  EXPECT_LT(f(scaled, 1), f(plain, 1) * 0.99);
  EXPECT_FLOAT_EQ(f(scaled, 2), f(plain, 2) / 8);
  EXPECT_FLOAT_EQ(f(scaled, 3), f(plain, 3) / 8);
}

TEST(Llama, KvCacheDecodingEqualsOneFullForward) {
  torch::NoGradGuard no_grad;
  const LlamaModel m = tiny_model(true);
  const at::Tensor ids = torch::randint(0, 50, {2, 9}, torch::kInt64);
  const at::Tensor mask =
      torch::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 9});
  const at::Tensor full = llama_forward(m, ids, mask);
  KvCache cache;
  const at::Tensor first = llama_forward(m, ids.narrow(1, 0, 6), mask.narrow(1, 0, 6), &cache);
  EXPECT_EQ(cache.length(), 6);
  std::vector<at::Tensor> parts = {first};
  for (int64_t t = 6; t < 9; ++t) parts.push_back(llama_forward(m, ids.narrow(1, t, 1), at::Tensor(), &cache));
  EXPECT_EQ(cache.length(), 9);
  const at::Tensor stepped = torch::cat(parts, 1);
  const at::Tensor real = mask.to(torch::kBool).unsqueeze(-1).expand_as(full);
  EXPECT_LT((full - stepped).abs().masked_select(real).max().item<double>(), 1e-5);
}

TEST(Llama, Bfloat16ModelTracksFloat32WithLeftPadding) {
  torch::NoGradGuard no_grad;
  const ModelConfig c = tiny_config(true);
  const LlamaModel f32 = llama_from_weights(c, tiny_weights(c), torch::kCPU, torch::kFloat32);
  const LlamaModel bf16 = llama_from_weights(c, tiny_weights(c), torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(bf16.layers[0].q_bias.scalar_type(), torch::kBFloat16);
  const at::Tensor ids = torch::randint(0, 50, {2, 6}, torch::kInt64);
  const at::Tensor mask = torch::tensor({0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 6});
  const at::Tensor a = llama_forward(f32, ids, mask), b = llama_forward(bf16, ids, mask);
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(torch::isnan(b).any().item<bool>());
  const at::Tensor real = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  const double scale = a.abs().max().item<double>();
  EXPECT_LT((a - b).abs().masked_select(real).max().item<double>(), 0.1 * scale);
}

// Adds x D^T to one projection: the same as running with W + D.
struct AddWeightHook : LinearHook {
  int64_t layer;
  LinearModule module;
  at::Tensor d;
  at::Tensor delta(int64_t l, LinearModule m, const at::Tensor& x) const override {
    return l == layer && m == module ? at::linear(x, d) : at::Tensor();
  }
};

TEST(Llama, HookDeltaEqualsChangingTheWeight) {
  torch::NoGradGuard no_grad;
  LlamaModel m = tiny_model();
  const at::Tensor ids = torch::randint(0, 50, {1, 7}, torch::kInt64);
  for (LinearModule module : {LinearModule::v_proj, LinearModule::down_proj}) {
    AddWeightHook hook;
    hook.layer = 1;
    hook.module = module;
    hook.d = 0.2 * torch::randn_like(llama_linear_weight(m, 1, module));
    const at::Tensor base = llama_forward(m, ids, at::Tensor());
    const at::Tensor hooked = llama_forward(m, ids, at::Tensor(), nullptr, &hook);
    EXPECT_GT((hooked - base).abs().max().item<double>(), 1e-3);
    at::Tensor& w = llama_linear_weight(m, 1, module);
    const at::Tensor saved = w.clone();
    w.add_(hook.d);
    const at::Tensor merged = llama_forward(m, ids, at::Tensor());
    w.copy_(saved);
    EXPECT_LT((hooked - merged).abs().max().item<double>(), 1e-4) << linear_module_name(module);
  }
}

TEST(Llama, ForwardIsDifferentiableThroughTheHook) {
  LlamaModel m = tiny_model();
  AddWeightHook hook;
  hook.layer = 0;
  hook.module = LinearModule::q_proj;
  hook.d = torch::zeros({32, 32}, torch::requires_grad());
  const at::Tensor lp = llama_continuation_logprobs(m, {3, 4, 5}, {6, 7}, &hook);
  lp.sum().backward();
  ASSERT_TRUE(hook.d.grad().defined());
  EXPECT_GT(hook.d.grad().abs().sum().item<double>(), 0);
}

TEST(Llama, BadInputIdsAreRejected) {
  const LlamaModel m = tiny_model();
  std::string msg = error_of([&] {
    llama_forward(m, torch::tensor({1, 50}, torch::kInt64).view({1, 2}), at::Tensor());
  });
  EXPECT_NE(msg.find("token id 50"), std::string::npos) << msg;
  msg = error_of([&] { llama_forward(m, torch::zeros({3}, torch::kInt64), at::Tensor()); });
  EXPECT_NE(msg.find("[batch, seq]"), std::string::npos) << msg;
  msg = error_of([&] { llama_forward(m, torch::zeros({1, 3}, torch::kInt64), torch::ones({1, 4})); });
  EXPECT_NE(msg.find("attention_mask"), std::string::npos) << msg;
  EXPECT_THROW(llama_linear_weight(const_cast<LlamaModel&>(m), 2, LinearModule::q_proj), std::out_of_range);
}

TEST(Llama, SamplingIsSeededAndTopKOneIsGreedy) {
  const LlamaModel m = tiny_model();
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3}, {4, 5}};
  GenerateOptions greedy;
  greedy.max_new_tokens = 8;
  GenerateOptions sample = greedy;
  sample.temperature = 1.5;
  sample.top_p = 0.9;
  sample.seed = 7;
  const auto a = llama_generate(m, prompts, sample);
  EXPECT_EQ(llama_generate(m, prompts, sample), a);
  sample.seed = 8;
  EXPECT_NE(llama_generate(m, prompts, sample), a);
  sample.top_k = 1;
  EXPECT_EQ(llama_generate(m, prompts, sample), llama_generate(m, prompts, greedy));
}

// Prefix sharing (bank scoring): the prompt runs once and its cache serves every
// continuation; the log-probs must be those of running (prompt, continuation) whole.
TEST(Llama, PrefixSharedLogprobsEqualWholeSequences) {
  torch::NoGradGuard no_grad;
  const LlamaModel m = tiny_model(true);
  AddWeightHook hook;
  hook.layer = 0;
  hook.module = LinearModule::v_proj;
  hook.d = 0.2 * torch::randn_like(m.layers[0].v_proj);
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {8, 9}, {10, 11, 12, 13}};
  const std::vector<std::pair<int64_t, std::vector<int64_t>>> requests = {
      {0, {20, 21, 22}}, {1, {23}}, {2, {24, 25, 26, 27, 28, 29}}, {1, {30, 31, 32, 33}}, {0, {}}, {2, {5, 5}}};
  for (const LinearHook* h : {static_cast<const LinearHook*>(nullptr), static_cast<const LinearHook*>(&hook)}) {
    const PromptPrefill prefill = llama_prefill(m, prompts, h);
    const auto shared = llama_prefix_logprobs(m, prefill, requests, h);
    std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> whole;
    for (const auto& [p, cont] : requests) whole.emplace_back(prompts[p], cont);
    const auto reference = llama_continuation_logprobs_batch(m, whole, h);
    ASSERT_EQ(shared.size(), requests.size());
    for (size_t r = 0; r < requests.size(); ++r) {
      ASSERT_EQ(shared[r].numel(), static_cast<int64_t>(requests[r].second.size())) << r;
      if (shared[r].numel() == 0) continue;
      EXPECT_LT((shared[r] - reference[r]).abs().max().item<double>(), 1e-5) << "request " << r;
    }
  }
  // The prefill is reusable: it is not changed by scoring continuations against it.
  const PromptPrefill prefill = llama_prefill(m, prompts);
  const int64_t cached = prefill.cache.length();
  llama_prefix_logprobs(m, prefill, requests);
  EXPECT_EQ(prefill.cache.length(), cached);
  EXPECT_THROW(llama_prefix_logprobs(m, prefill, {{3, {1, 2}}}), std::out_of_range);
}

// Greedy replies of a right-padded batch (pads in the middle of the cache once decoding
// starts) are those of each prompt generated alone.
TEST(Llama, BatchedGenerationEqualsOnePromptAtATime) {
  const LlamaModel m = tiny_model(true);
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5, 6}, {7}, {8, 9, 10}};
  GenerateOptions greedy;
  greedy.max_new_tokens = 10;
  const auto batched = llama_generate(m, prompts, greedy);
  for (size_t b = 0; b < prompts.size(); ++b) {
    EXPECT_EQ(batched[b], llama_generate(m, {prompts[b]}, greedy)[0]) << "prompt " << b;
  }
  EXPECT_EQ(llama_generate_prefilled(m, llama_prefill(m, prompts), greedy), batched);
}

// Training without padding: sequences packed into one row give the hidden states, the
// summed loss and the gradients of the right-padded batch (1e-5).
TEST(Llama, PackedSequencesEqualThePaddedBatchInLossAndGradients) {
  const LlamaModel m = tiny_model(true);
  const std::vector<std::vector<int64_t>> seqs = {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {10, 11}, {12, 13, 14, 15, 16}};
  const std::vector<int64_t> n_prompt = {4, 1, 2};  // targets: tokens from n_prompt on
  AddWeightHook hook;
  hook.layer = 0;
  hook.module = LinearModule::q_proj;
  hook.d = (0.1 * torch::randn_like(m.layers[0].q_proj)).requires_grad_(true);

  // padded: one forward over [3, 9], cross-entropy at the target positions
  const auto [ids, mask] = [&] {
    at::Tensor i = torch::zeros({3, 9}, torch::kInt64), k = torch::zeros({3, 9}, torch::kInt64);
    for (size_t b = 0; b < seqs.size(); ++b) {
      for (size_t t = 0; t < seqs[b].size(); ++t) {
        i[b][t] = seqs[b][t];
        k[b][t] = 1;
      }
    }
    return std::pair{i, k};
  }();
  const at::Tensor logits = llama_forward(m, ids, mask, nullptr, &hook);
  at::Tensor padded_loss = torch::zeros({}, torch::kFloat32);
  for (size_t b = 0; b < seqs.size(); ++b) {
    for (size_t t = n_prompt[b]; t < seqs[b].size(); ++t)
      padded_loss = padded_loss - logits[b][t - 1].log_softmax(-1)[seqs[b][t]];
  }
  padded_loss.backward();
  const at::Tensor padded_grad = hook.d.grad().clone();
  hook.d.mutable_grad().zero_();

  std::vector<int64_t> flat, lengths, at_pos, labels;
  for (size_t b = 0; b < seqs.size(); ++b) {
    for (size_t t = 0; t < seqs[b].size(); ++t) {
      if (static_cast<int64_t>(t) >= n_prompt[b]) {
        at_pos.push_back(static_cast<int64_t>(flat.size()) - 1);
        labels.push_back(seqs[b][t]);
      }
      flat.push_back(seqs[b][t]);
    }
    lengths.push_back(static_cast<int64_t>(seqs[b].size()));
  }
  const at::Tensor hidden = llama_hidden_packed(m, torch::tensor(flat, torch::kInt64), lengths, &hook);
  ASSERT_EQ(hidden.sizes(), (std::vector<int64_t>{16, 32}));
  {
    torch::NoGradGuard no_grad;
    const at::Tensor padded_hidden = llama_hidden_states(m, ids, mask, &hook);
    int64_t start = 0;
    for (size_t b = 0; b < seqs.size(); ++b) {
      const int64_t n = lengths[b];
      EXPECT_LT((hidden.narrow(0, start, n) - padded_hidden[b].narrow(0, 0, n)).abs().max().item<double>(), 1e-5)
          << "sequence " << b;
      start += n;
    }
  }
  const at::Tensor packed_logits = llama_lm_head(m, hidden.index_select(0, torch::tensor(at_pos, torch::kInt64)));
  const at::Tensor packed_loss =
      -packed_logits.log_softmax(-1).gather(-1, torch::tensor(labels, torch::kInt64).unsqueeze(-1)).sum();
  EXPECT_NEAR(packed_loss.item<double>(), padded_loss.item<double>(), 1e-5 * std::abs(padded_loss.item<double>()));
  packed_loss.backward();
  EXPECT_GT(padded_grad.abs().max().item<double>(), 1e-3);
  EXPECT_LT((hook.d.grad() - padded_grad).abs().max().item<double>(), 1e-5 * padded_grad.abs().max().item<double>());
  EXPECT_THROW(llama_hidden_packed(m, torch::tensor(flat, torch::kInt64), {9, 2, 6}), std::invalid_argument);
}

// A soft prompt whose rows are the embeddings of tokens `pre` must act exactly as those
// tokens written before every sequence: in the padded forward, the packed training forward,
// prefix-shared scoring and generation, with a hook on the projections, and its gradient
// must be the gradient of the loss with respect to those input embeddings.
TEST(Llama, SoftPromptActsAsPrependedTokens) {
  LlamaModel m = tiny_model(true);
  const std::vector<int64_t> pre = {20, 21, 22};
  const int64_t P = static_cast<int64_t>(pre.size());
  const std::vector<std::vector<int64_t>> seqs = {{1, 2, 3, 4, 5, 6}, {7, 8}, {9, 10, 11, 12}};
  AddWeightHook hook;
  hook.layer = 1;
  hook.module = LinearModule::v_proj;
  hook.d = 0.1 * torch::randn_like(m.layers[1].v_proj);
  const auto with_pre = [&](const std::vector<int64_t>& s) {
    std::vector<int64_t> out = pre;
    out.insert(out.end(), s.begin(), s.end());
    return out;
  };
  // reference: no soft prompt, the tokens written out, each sequence alone
  std::vector<at::Tensor> ref;
  {
    torch::NoGradGuard no_grad;
    for (const auto& s : seqs) {
      const at::Tensor ids = torch::tensor(with_pre(s), torch::kInt64).unsqueeze(0);
      ref.push_back(llama_forward(m, ids, at::Tensor(), nullptr, &hook)[0].narrow(0, P, s.size()));
    }
  }
  const at::Tensor soft = m.embed_tokens.index_select(0, torch::tensor(pre, torch::kInt64)).clone();
  llama_set_soft_prompt(m, soft);
  EXPECT_EQ(llama_soft_prompt_length(m), P);
  {
    torch::NoGradGuard no_grad;
    // padded batch (right-padded): logits of the real tokens only
    at::Tensor ids = torch::zeros({3, 6}, torch::kInt64), mask = torch::zeros({3, 6}, torch::kInt64);
    for (size_t b = 0; b < seqs.size(); ++b) {
      for (size_t t = 0; t < seqs[b].size(); ++t) {
        ids[b][t] = seqs[b][t];
        mask[b][t] = 1;
      }
    }
    const at::Tensor logits = llama_forward(m, ids, mask, nullptr, &hook);
    ASSERT_EQ(logits.size(1), 6);
    // float32 rounding, relative to the logits' size (|logits| ~ 5 here); a wrong mask or
    // position is off by far more
    const auto tolerance = [](const at::Tensor& want) { return 1e-5 * want.abs().max().item<double>(); };
    for (size_t b = 0; b < seqs.size(); ++b) {
      const int64_t n = seqs[b].size();
      EXPECT_LT((logits[b].narrow(0, 0, n) - ref[b]).abs().max().item<double>(), tolerance(ref[b]))
          << "padded row " << b;
    }
    // packed
    std::vector<int64_t> flat, lengths;
    for (const auto& s : seqs) {
      flat.insert(flat.end(), s.begin(), s.end());
      lengths.push_back(s.size());
    }
    const at::Tensor packed =
        llama_lm_head(m, llama_hidden_packed(m, torch::tensor(flat, torch::kInt64), lengths, &hook));
    ASSERT_EQ(packed.size(0), static_cast<int64_t>(flat.size()));
    int64_t start = 0;
    for (size_t b = 0; b < seqs.size(); ++b) {
      const int64_t n = seqs[b].size();
      EXPECT_LT((packed.narrow(0, start, n) - ref[b]).abs().max().item<double>(), tolerance(ref[b]))
          << "packed sequence " << b;
      start += n;
    }
    // prefix-shared scoring: prompt = the first two tokens, continuation = the rest
    const PromptPrefill prefill = llama_prefill(m, {{seqs[0][0], seqs[0][1]}, {seqs[2][0], seqs[2][1]}}, &hook);
    const auto lp = llama_prefix_logprobs(m, prefill, {{0, {3, 4, 5, 6}}, {1, {11, 12}}}, &hook);
    const std::vector<std::pair<size_t, std::vector<int64_t>>> conts = {{0, {3, 4, 5, 6}}, {2, {11, 12}}};
    for (size_t r = 0; r < conts.size(); ++r) {
      const auto& [b, cont] = conts[r];
      for (size_t t = 0; t < cont.size(); ++t) {
        const double want = ref[b][1 + t].log_softmax(-1)[cont[t]].item<double>();
        EXPECT_NEAR(lp[r][t].item<double>(), want, 1e-5) << "request " << r << " token " << t;
      }
    }
    // generation equals generation after the written-out tokens
    GenerateOptions g;
    g.max_new_tokens = 5;
    const auto got = llama_generate(m, {{1, 2, 3}, {7}}, g, &hook);
    llama_set_soft_prompt(m, at::Tensor());
    EXPECT_EQ(llama_soft_prompt_length(m), 0);
    const auto want = llama_generate(m, {with_pre({1, 2, 3}), with_pre({7})}, g, &hook);
    EXPECT_EQ(got, want);
  }
  // The gradient reaching the soft prompt is that of the loss w.r.t. those input embeddings:
  // the gradient of embed_tokens' rows `pre` when the tokens are written out (they occur
  // nowhere else, and the head is not tied to the embedding).
  ASSERT_FALSE(m.config.tie_word_embeddings);
  const std::vector<int64_t> seq = {1, 2, 3, 4};
  const auto loss_of = [&](const std::vector<int64_t>& ids) {
    const at::Tensor h = llama_hidden_packed(m, torch::tensor(ids, torch::kInt64), {static_cast<int64_t>(ids.size())});
    return -llama_lm_head(m, h).log_softmax(-1)[ids.size() - 2][ids.back()];
  };
  const at::Tensor trained = soft.clone().requires_grad_(true);
  llama_set_soft_prompt(m, trained);
  loss_of(seq).backward();
  ASSERT_TRUE(trained.grad().defined());
  llama_set_soft_prompt(m, at::Tensor());
  m.embed_tokens.requires_grad_(true);
  loss_of(with_pre(seq)).backward();
  const at::Tensor want = m.embed_tokens.grad().index_select(0, torch::tensor(pre, torch::kInt64));
  EXPECT_GT(want.abs().max().item<double>(), 1e-3);
  EXPECT_LT((trained.grad() - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>());
  EXPECT_THROW(llama_set_soft_prompt(m, torch::zeros({2, 31})), std::invalid_argument);
}

}  // namespace
}  // namespace kmoe
