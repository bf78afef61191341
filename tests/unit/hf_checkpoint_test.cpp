#include "data/formats/hf_checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/formats/safetensors.h"
#include "temp_dir.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

void text_write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

nlohmann::json llama_config_json() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", 300},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"max_position_embeddings", 512},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"rope_scaling",
           {{"rope_type", "llama3"},
            {"factor", 8.0},
            {"low_freq_factor", 1.0},
            {"high_freq_factor", 4.0},
            {"original_max_position_embeddings", 64}}},
          {"tie_word_embeddings", true},
          {"hidden_act", "silu"},
          {"bos_token_id", 1},
          {"eos_token_id", {2, 7}},
          {"pad_token_id", nullptr}};
}

TEST(HfCheckpoint, LlamaConfigWithLlama3RopeScalingLoads) {
  testing::TempDir dir;
  text_write(dir / "config.json", llama_config_json().dump());
  const ModelConfig c = hf_config_load(dir.path.string());
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 64);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(c.pad_token_id, -1);
}

TEST(HfCheckpoint, Qwen2AlwaysHasAttentionBiasAndHeadDimIsHonoured) {
  testing::TempDir dir;
  auto j = llama_config_json();
  j.erase("model_type");
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["rope_scaling"] = nullptr;
  j["eos_token_id"] = 5;
  j["head_dim"] = 32;
  j.erase("tie_word_embeddings");
  text_write(dir / "config.json", j.dump());
  const ModelConfig c = hf_config_load(dir.path.string());
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.rope_scaling.type, "none");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{5}));
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(HfCheckpoint, BadConfigNamesFileAndKey) {
  testing::TempDir dir;
  const std::string path = dir / "config.json";
  const auto expect_error = [&](nlohmann::json j, const std::string& key) {
    text_write(path, j.dump());
    const std::string msg = error_of([&] { hf_config_load(dir.path.string()); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("'" + key + "'"), std::string::npos) << msg;
  };
  auto j = llama_config_json();
  j.erase("hidden_size");
  expect_error(j, "hidden_size");
  j = llama_config_json();
  j["num_attention_heads"] = "four";
  expect_error(j, "num_attention_heads");
  j = llama_config_json();
  j["model_type"] = "gpt2";
  expect_error(j, "model_type");
  j = llama_config_json();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_error(j, "rope_scaling");
  j = llama_config_json();
  j["rope_scaling"].erase("factor");
  expect_error(j, "rope_scaling.factor");
  j = llama_config_json();
  j["eos_token_id"] = "</s>";
  expect_error(j, "eos_token_id");
  j = llama_config_json();
  j["num_key_value_heads"] = 3;
  expect_error(j, "num_key_value_heads");

  text_write(path, "{not json");
  const std::string msg = error_of([&] { hf_config_load(dir.path.string()); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(HfCheckpoint, SingleFileWeightsAreWidenedToFloat32) {
  testing::TempDir dir;
  const auto w = torch::randn({4, 3}).to(torch::kBFloat16);
  safetensors_write(dir / "model.safetensors", {{"model.norm.weight", w}});
  const auto weights = hf_weights_load(dir.path.string());
  ASSERT_EQ(weights.size(), 1u);
  EXPECT_EQ(weights.at("model.norm.weight").scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(weights.at("model.norm.weight"), w.to(torch::kFloat32)));
}

void shards_write(const testing::TempDir& dir, const at::Tensor& a, const at::Tensor& b) {
  safetensors_write(dir / "model-00001-of-00002.safetensors", {{"a.weight", a}});
  safetensors_write(dir / "model-00002-of-00002.safetensors", {{"b.weight", b}});
  const nlohmann::json index = {
      {"metadata", {{"total_size", 0}}},
      {"weight_map",
       {{"a.weight", "model-00001-of-00002.safetensors"}, {"b.weight", "model-00002-of-00002.safetensors"}}}};
  text_write(dir / "model.safetensors.index.json", index.dump());
}

TEST(HfCheckpoint, ShardedWeightsLoadThroughTheIndex) {
  testing::TempDir dir;
  const auto a = torch::randn({2, 3});
  const auto b = torch::randn({5}).to(torch::kFloat16);
  shards_write(dir, a, b);
  const auto weights = hf_weights_load(dir.path.string());
  ASSERT_EQ(weights.size(), 2u);
  EXPECT_TRUE(torch::equal(weights.at("a.weight"), a));
  EXPECT_TRUE(torch::equal(weights.at("b.weight"), b.to(torch::kFloat32)));
}

TEST(HfCheckpoint, MissingShardNamesIndexAndShard) {
  testing::TempDir dir;
  shards_write(dir, torch::randn({2}), torch::randn({2}));
  std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
  const std::string msg = error_of([&] { hf_weights_load(dir.path.string()); });
  EXPECT_NE(msg.find(dir / "model.safetensors.index.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors"), std::string::npos) << msg;
}

TEST(HfCheckpoint, ShardLackingAListedTensorNamesIt) {
  testing::TempDir dir;
  shards_write(dir, torch::randn({2}), torch::randn({2}));
  safetensors_write(dir / "model-00002-of-00002.safetensors", {{"c.weight", torch::randn({2})}});
  const std::string msg = error_of([&] { hf_weights_load(dir.path.string()); });
  EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'b.weight'"), std::string::npos) << msg;
}

TEST(HfCheckpoint, FolderWithoutWeightsIsAnError) {
  testing::TempDir dir;
  const std::string msg = error_of([&] { hf_weights_load(dir.path.string()); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(HfCheckpoint, PytorchBinIsRefusedWithHowToConvert) {
  for (const char* name : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
    testing::TempDir dir;
    std::ofstream(dir / name) << "x";
    const std::string msg = error_of([&] { hf_weights_load(dir.path.string()); });
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find("safe_serialization=True"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace kmoe
