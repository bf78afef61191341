#include "data/formats/peft_prompt.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "data/formats/peft_adapter.h"
#include "data/formats/safetensors.h"
#include "temp_dir.h"
#include "tests/unit/error_of.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

SoftPrompt soft_prompt_of(int64_t p, int64_t hidden) {
  SoftPrompt sp;
  sp.embeddings = torch::randn({p, hidden});
  sp.init = "TEXT";
  sp.init_text = "Answer the question.";
  sp.base_model = "tiny";
  return sp;
}

TEST(PeftPrompt, SavedFolderReadsBackWithPeftsConfig) {
  testing::TempDir tmp;
  const ModelConfig base = testing::tiny_llama_config();
  const SoftPrompt sp = soft_prompt_of(5, base.hidden_size);
  peft_prompt_save(sp, base, tmp / "sp");
  EXPECT_FALSE(std::filesystem::exists(tmp / "sp.partial"));
  const auto config = nlohmann::json::parse(std::ifstream(tmp / "sp/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "PROMPT_TUNING");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["num_virtual_tokens"], 5);
  EXPECT_EQ(config["token_dim"], base.hidden_size);
  EXPECT_EQ(config["num_transformer_submodules"], 1);
  EXPECT_EQ(config["prompt_tuning_init"], "TEXT");
  EXPECT_EQ(config["inference_mode"], true);
  SafetensorsFile f(tmp / "sp/adapter_model.safetensors");
  ASSERT_EQ(f.entries().size(), 1u);
  EXPECT_TRUE(f.has("prompt_embeddings"));
  const SoftPrompt back = peft_prompt_load(tmp / "sp", base);
  EXPECT_TRUE(back.embeddings.equal(sp.embeddings));
  EXPECT_EQ(back.init, "TEXT");
  EXPECT_EQ(back.init_text, sp.init_text);
}

TEST(PeftPrompt, WrongFoldersAreRefusedNamingWhat) {
  testing::TempDir tmp;
  const ModelConfig base = testing::tiny_llama_config();
  peft_prompt_save(soft_prompt_of(3, base.hidden_size), base, tmp / "ok");
  EXPECT_NE(error_of([&] { peft_prompt_load(tmp / "none", base); }).find("does not exist"), std::string::npos);
  // another hidden size
  ModelConfig wider = base;
  wider.hidden_size = base.hidden_size * 2;
  EXPECT_NE(error_of([&] { peft_prompt_load(tmp / "ok", wider); }).find("token_dim is"), std::string::npos);
  // a LoRA adapter config
  std::filesystem::copy(tmp / "ok", tmp / "lora", std::filesystem::copy_options::recursive);
  std::ofstream(tmp / "lora/adapter_config.json") << R"({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"]})";
  EXPECT_NE(error_of([&] { peft_prompt_load(tmp / "lora", base); }).find("is a LoRA adapter"), std::string::npos);
  // and the reverse: a soft prompt where a LoRA is expected
  EXPECT_NE(error_of([&] { peft_adapter_load(tmp / "ok", base); }).find("is a soft prompt"), std::string::npos);
  // a tensor of the wrong shape, an extra tensor, NaN
  const auto with_tensors = [&](const std::string& name, const std::map<std::string, at::Tensor>& t) {
    std::filesystem::copy(tmp / "ok", tmp / name, std::filesystem::copy_options::recursive);
    safetensors_write(tmp / (name + "/adapter_model.safetensors"), t);
    return error_of([&] { peft_prompt_load(tmp / name, base); });
  };
  EXPECT_NE(with_tensors("shape", {{"prompt_embeddings", torch::zeros({4, base.hidden_size})}}).find("expected [3, "),
            std::string::npos);
  EXPECT_NE(
      with_tensors("extra", {{"prompt_embeddings", torch::zeros({3, base.hidden_size})}, {"other", torch::zeros({1})}})
          .find("unexpected tensor 'other'"),
      std::string::npos);
  at::Tensor bad = torch::zeros({3, base.hidden_size});
  bad[1][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(with_tensors("nan", {{"prompt_embeddings", bad}}).find("non-finite"), std::string::npos);
  std::ofstream(tmp / "ok/adapter_config.json") << "{\"peft_type\": \"PROMPT_TUNING\",\n \"num_virtual_tokens\": }";
  EXPECT_NE(error_of([&] { peft_prompt_load(tmp / "ok", base); }).find("bad JSON at line 2"), std::string::npos);
}

}  // namespace
}  // namespace kmoe
