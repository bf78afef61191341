// data/formats/model_init.h: the folder `kmoe init-model` writes loads through model_files_load, runs
// forward, tokenizes any UTF-8 text byte for byte with the ChatML specials as single tokens,
// renders ChatML, and is the same for the same seed.
#include "data/formats/model_init.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "data/formats/model_files.h"
#include "data/formats/safetensors.h"
#include "model/llama.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

ModelInitOptions small() {
  ModelInitOptions o;
  o.hidden = 32;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 2;
  o.intermediate = 64;
  o.seed = 3;
  return o;
}

TEST(ModelInit, LoadsAndRunsForward) {
  testing::TempDir tmp;
  const std::string dir = tmp / "model";
  model_init_write(dir, small());
  EXPECT_FALSE(std::filesystem::exists(dir + ".partial"));
  ModelFiles m = model_files_load(dir);
  EXPECT_EQ(m.config.hidden_size, 32);
  EXPECT_EQ(m.config.num_hidden_layers, 2);
  EXPECT_EQ(m.config.num_key_value_heads, 2);
  EXPECT_EQ(m.config.vocab_size, kInitVocab);
  EXPECT_TRUE(m.config.tie_word_embeddings);
  EXPECT_EQ(m.tokenizer->vocab_size(), kInitVocab);
  ASSERT_TRUE(m.chat_template.has_value());
  EXPECT_EQ(m.chat_template->bos_token, "<|endoftext|>");  // from tokenizer_config.json
  EXPECT_EQ(m.chat_template->eos_token, "<|im_end|>");
  // generation stops at <|im_end|>
  EXPECT_NE(std::find(m.stop_token_ids.begin(), m.stop_token_ids.end(), kInitImEnd), m.stop_token_ids.end());

  const LlamaModel model = llama_from_weights(m.config, std::move(m.weights), torch::kCPU, torch::kFloat32);
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor(std::vector<int64_t>{kInitImStart, 'h', 'i', kInitImEnd}, torch::kInt64).unsqueeze(0);
  const at::Tensor logits = llama_forward(model, ids, at::Tensor(), nullptr, nullptr);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 4, kInitVocab}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  // random init: small logits, near-uniform prediction
  EXPECT_LT(logits.abs().max().item<float>(), 5.0f);
}

TEST(ModelInit, TokenizerRoundTripsUtf8AndSpecials) {
  testing::TempDir tmp;
  model_init_write(tmp / "model", small());
  const ModelFiles m = model_files_load(tmp / "model");
  const Tokenizer& tok = *m.tokenizer;
  const std::string text = "Grüße, 世界! tab\there\nnew line \x01\x7f";
  const auto ids = tok.encode(text, false);
  ASSERT_EQ(ids.size(), text.size());  // one token per byte, no merges
  for (size_t i = 0; i < text.size(); ++i) EXPECT_EQ(ids[i], static_cast<uint8_t>(text[i])) << "byte " << i;
  EXPECT_EQ(tok.decode(ids), text);

  const std::string chat = chat_render(*m.chat_template, {{"user", "2+2?"}, {"assistant", "4"}}, false);
  EXPECT_EQ(chat, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n");
  const auto chat_ids = tok.encode(chat, false);
  EXPECT_EQ(chat_ids.front(), kInitImStart);
  EXPECT_EQ(std::count(chat_ids.begin(), chat_ids.end(), kInitImEnd), 2);
  EXPECT_EQ(tok.decode(chat_ids), chat);
  EXPECT_EQ(tok.decode(chat_ids, true), "user\n2+2?\nassistant\n4\n");
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), kInitEndOfText);
  EXPECT_EQ(chat_render(*m.chat_template, {{"user", "hi"}}, true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ModelInit, SameSeedSameWeightsOtherSeedOther) {
  testing::TempDir tmp;
  ModelInitOptions o = small();
  model_init_write(tmp / "a", o);
  model_init_write(tmp / "b", o);
  o.seed = 4;
  model_init_write(tmp / "c", o);
  SafetensorsFile a(tmp / "a/model.safetensors"), b(tmp / "b/model.safetensors"), c(tmp / "c/model.safetensors");
  const std::string q = "model.layers.1.self_attn.q_proj.weight";
  EXPECT_TRUE(torch::equal(a.tensor(q), b.tensor(q)));
  EXPECT_FALSE(torch::equal(a.tensor(q), c.tensor(q)));
  EXPECT_TRUE(model_init_matches(tmp / "a", small()));
  EXPECT_FALSE(model_init_matches(tmp / "c", small()));
  EXPECT_TRUE(model_init_matches(tmp / "c", o));
  EXPECT_FALSE(model_init_matches(tmp / "missing", o));
}

TEST(ModelInit, RejectsInconsistentShapes) {
  ModelInitOptions o = small();
  o.heads = 3;
  EXPECT_THROW(model_init_validate(o), std::invalid_argument);
  o = small();
  o.kv_heads = 3;
  EXPECT_THROW(model_init_validate(o), std::invalid_argument);
  o = small();
  o.hidden = 36;  // head size 9: odd
  EXPECT_THROW(model_init_validate(o), std::invalid_argument);
  o = small();
  o.layers = 0;
  EXPECT_THROW(model_init_validate(o), std::invalid_argument);
}

}  // namespace
}  // namespace kmoe
