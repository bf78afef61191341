// The decoder encoder on a tiny random LLaMA: unit-norm vectors of the model's width, and a
// text's vector does not depend on the batch (padding) it is encoded in.
#include "selection/decoder_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/safetensors.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

using nlohmann::json;

void write_tiny_llama(const std::string& dir) {
  const int64_t h = 16, inter = 32, layers = 2, vocab = 258;
  std::ofstream(dir + "/config.json") << json{
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", vocab},
      {"hidden_size", h},
      {"intermediate_size", inter},
      {"num_hidden_layers", layers},
      {"num_attention_heads", 2},
      {"num_key_value_heads", 1},
      {"rms_norm_eps", 1e-5},
      {"tie_word_embeddings", true},
      {"bos_token_id", 1},
      {"eos_token_id", 2}}.dump();
  torch::manual_seed(0);
  std::map<std::string, at::Tensor> w;
  w["model.embed_tokens.weight"] = torch::randn({vocab, h});
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
  json vocab_json = json::object();
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
    vocab_json[s] = b;
  }
  json tok;
  tok["model"] = {{"type", "BPE"}, {"vocab", vocab_json}, {"merges", json::array()}};
  tok["added_tokens"] = json::array({{{"id", 256}, {"content", "<|im_start|>"}, {"special", true}},
                                     {{"id", 257}, {"content", "<|im_end|>"}, {"special", true}}});
  tok["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
}

TEST(DecoderEncoder, UnitVectorsOfModelWidthDescribedForTheArtifact) {
  testing::TempDir dir;
  write_tiny_llama(dir.path.string());
  const auto enc = decoder_encoder_load(dir.path.string(), {});
  const at::Tensor e = enc->encode({"hello world", "a"});
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({2}), 1e-5, 1e-6));
  EXPECT_EQ(enc->describe().kind, "decoder");
  EXPECT_EQ(enc->describe().pooling, "mean");
  EXPECT_EQ(enc->describe().dim, 16);
  EXPECT_EQ(enc->describe().model_sha256.size(), 64u);
  EXPECT_FALSE(torch::allclose(e[0], e[1], 1e-3, 1e-3));  // different texts, different vectors
}

TEST(DecoderEncoder, VectorDoesNotDependOnBatchOrPadding) {
  testing::TempDir dir;
  write_tiny_llama(dir.path.string());
  const auto enc = decoder_encoder_load(dir.path.string(), {});
  const at::Tensor alone = enc->encode({"short"});
  const at::Tensor batched = enc->encode({"a much longer text that forces padding of the short one", "short"});
  EXPECT_TRUE(torch::allclose(alone[0], batched[1], 1e-5, 1e-6)) << (alone[0] - batched[1]).abs().max();
}

TEST(DecoderEncoder, PrefixAndNormalizeChangeTheResult) {
  testing::TempDir dir;
  write_tiny_llama(dir.path.string());
  DecoderEncoderOptions o;
  o.normalize = false;
  o.prefix = "query: ";
  const auto enc = decoder_encoder_load(dir.path.string(), o);
  const auto plain = decoder_encoder_load(dir.path.string(), {});
  const at::Tensor a = enc->encode({"text"});
  const at::Tensor b = plain->encode({"text"});
  EXPECT_FALSE(torch::allclose(a / a.norm(), b, 1e-4, 1e-4));
  EXPECT_EQ(enc->describe().prefix, "query: ");
  EXPECT_FALSE(enc->describe().normalize);
}

TEST(DecoderEncoder, MissingModelNamesThePath) {
  try {
    decoder_encoder_load("/nonexistent/model-dir", {});
    FAIL() << "expected an exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kmoe
