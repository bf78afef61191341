#include "data/formats/model_files.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/formats/safetensors.h"
#include "model/llama.h"
#include "temp_dir.h"
#include "tests/unit/error_of.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

using nlohmann::json;
using testing::write_tiny_hf_model;

TEST(ModelFiles, HfFolderGivesConfigWeightsTokenizerAndChatFormat) {
  testing::TempDir dir;
  write_tiny_hf_model(dir.path.string(), 300);
  ModelFiles m = model_files_load(dir.path.string());
  EXPECT_EQ(m.format, "hf");
  EXPECT_EQ(m.config.hidden_size, 16);
  EXPECT_EQ(m.tokenizer->vocab_size(), 258);
  ASSERT_TRUE(m.chat_template.has_value());
  EXPECT_NE(m.chat_template->source.find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(m.stop_token_ids, (std::vector<int64_t>{2, 257}));  // config EOS and <|im_end|>
  const std::string prompt = chat_render(*m.chat_template, {{"user", "hi"}}, true);
  const auto ids = m.tokenizer->encode(prompt, false);
  EXPECT_EQ(ids.front(), 256);  // <|im_start|> matched as one token
  const LlamaModel model = llama_from_weights(m.config, std::move(m.weights), torch::kCPU, torch::kFloat32);
  const auto logits =
      llama_forward(model, torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0), {});
  EXPECT_EQ(logits.size(2), 300);
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

TEST(ModelFiles, ChatTemplateTheInterpreterRefusesMeansNoChatTemplate) {
  testing::TempDir dir;
  write_tiny_hf_model(dir.path.string(), 300);
  std::ofstream(dir / "tokenizer_config.json") << json{{"chat_template", "{{ messages | wordwrap }}"}}.dump();
  const ModelFiles m = model_files_load(dir.path.string());
  EXPECT_FALSE(m.chat_template.has_value());
  EXPECT_EQ(m.chat_template_error, "chat template line 1: filter 'wordwrap' is not supported");
  EXPECT_EQ(m.stop_token_ids, (std::vector<int64_t>{2}));
}

TEST(ModelFiles, BadInputsNameThePath) {
  testing::TempDir dir;
  EXPECT_NE(error_of([&] { model_files_load(dir / "nope"); }).find("nope: model not found"), std::string::npos);
  std::ofstream(dir / "model.bin") << "this is not a gguf file";
  EXPECT_NE(error_of([&] { model_files_load(dir / "model.bin"); }).find("model.bin"), std::string::npos);

  write_tiny_hf_model(dir.path.string(), 200);  // the tokenizer has 258 tokens
  EXPECT_NE(
      error_of([&] { model_files_load(dir.path.string()); }).find("tokenizer has 258 tokens but the model only 200"),
      std::string::npos);

  std::filesystem::remove(dir / "tokenizer.json");
  write_tiny_hf_model(dir.path.string(), 300);
  std::filesystem::remove(dir / "tokenizer.json");
  EXPECT_NE(error_of([&] { model_files_load(dir.path.string()); }).find(dir.path.string()), std::string::npos);
  write_tiny_hf_model(dir.path.string(), 300);
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  EXPECT_NE(error_of([&] { model_files_load(dir.path.string()); }).find("tokenizer_config.json: not valid JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace kmoe
