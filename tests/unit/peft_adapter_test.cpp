#include "data/formats/peft_adapter.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "data/formats/safetensors.h"
#include "temp_dir.h"
#include "tiny_llama.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

namespace fs = std::filesystem;

const char* kQvConfig = R"({
  "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "tiny",
  "r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "bias": "none", "use_rslora": false,
  "target_modules": ["v_proj", "q_proj"], "layers_to_transform": null, "rank_pattern": {}, "alpha_pattern": {},
  "fan_in_fan_out": false, "modules_to_save": null, "use_dora": false
})";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// An adapter directory with `config` and the tensors of a valid q/v adapter for testing::tiny_llama_config(),
// edited by `edit` before writing.
std::string write_adapter(const testing::TempDir& tmp, const std::string& name, const std::string& config,
                          const std::function<void(std::map<std::string, at::Tensor>&)>& edit = nullptr) {
  const std::string dir = tmp / name;
  fs::create_directories(dir);
  write_text(dir + "/adapter_config.json", config);
  std::map<std::string, at::Tensor> tensors;
  for (int64_t l = 0; l < 2; ++l) {
    for (LinearModule m : {LinearModule::q_proj, LinearModule::v_proj}) {
      const auto [in, out] = linear_features(testing::tiny_llama_config(), m);
      tensors[peft_tensor_key(l, m, 'A')] = torch::randn({4, in});
      tensors[peft_tensor_key(l, m, 'B')] = torch::randn({out, 4});
    }
  }
  if (edit) edit(tensors);
  safetensors_write(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  return dir;
}

#define EXPECT_MENTIONS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(PeftAdapter, ConfigReadsPeftFields) {
  const LoraConfig c = peft_config_parse(kQvConfig, "cfg.json");
  EXPECT_EQ(c.r, 4);
  EXPECT_DOUBLE_EQ(c.lora_alpha, 8.0);
  EXPECT_DOUBLE_EQ(c.lora_dropout, 0.05);
  EXPECT_FALSE(c.use_rslora);
  EXPECT_EQ(c.target_modules, (std::vector<LinearModule>{LinearModule::q_proj, LinearModule::v_proj}));
  EXPECT_TRUE(c.layers_to_transform.empty());
  EXPECT_EQ(c.base_model_name_or_path, "tiny");
  EXPECT_EQ(c.task_type, "CAUSAL_LM");

  const LoraConfig d = peft_config_parse(
      R"({"r": 2, "lora_alpha": 3.5, "use_rslora": true, "target_modules": "all-linear", "layers_to_transform": 1,
          "fan_in_fan_out": true, "layers_pattern": "layers"})",
      "cfg.json");
  EXPECT_EQ(d.target_modules.size(), 7u);
  EXPECT_TRUE(d.use_rslora);
  EXPECT_DOUBLE_EQ(d.lora_alpha, 3.5);
  EXPECT_EQ(d.layers_to_transform, std::vector<int64_t>{1});
  EXPECT_FALSE(d.fan_in_fan_out);  // as PEFT does for nn.Linear layers
}

TEST(PeftAdapter, ConfigJsonRoundTrips) {
  LoraConfig c = peft_config_parse(kQvConfig, "cfg.json");
  c.layers_to_transform = {0};
  c.use_rslora = true;
  const LoraConfig back = peft_config_parse(peft_config_json(c), "saved.json");
  EXPECT_EQ(back.r, c.r);
  EXPECT_EQ(back.lora_alpha, c.lora_alpha);
  EXPECT_EQ(back.lora_dropout, c.lora_dropout);
  EXPECT_EQ(back.use_rslora, c.use_rslora);
  EXPECT_EQ(back.target_modules, c.target_modules);
  EXPECT_EQ(back.layers_to_transform, c.layers_to_transform);
  EXPECT_EQ(back.base_model_name_or_path, "tiny");
}

TEST(PeftAdapter, BadJsonNamesFileAndLine) {
  const std::string e = error_of([] { peft_config_parse("{\n  \"r\": 4,\n  \"lora_alpha\": ,\n}", "x/cfg.json"); });
  EXPECT_MENTIONS(e, "x/cfg.json");
  EXPECT_MENTIONS(e, "line 3");
  EXPECT_MENTIONS(error_of([] { peft_config_parse(R"({"r": "four", "target_modules": ["q_proj"]})", "c"); }),
                  "'r' must be an integer");
}

TEST(PeftAdapter, UnsupportedOptionsAreRefused) {
  const auto refuse = [](const std::string& extra, const std::string& why) {
    const std::string text = R"({"r": 4, "target_modules": ["q_proj"], )" + extra + "}";
    const std::string e = error_of([&] { peft_config_parse(text, "cfg.json"); });
    EXPECT_MENTIONS(e, "cfg.json");
    EXPECT_MENTIONS(e, why);
  };
  refuse(R"("bias": "all")", "bias");
  refuse(R"("rank_pattern": {"q_proj": 8})", "rank_pattern");
  refuse(R"("alpha_pattern": {"q_proj": 8})", "alpha_pattern");
  refuse(R"("use_dora": true)", "DoRA");
  refuse(R"("modules_to_save": ["lm_head"])", "modules_to_save");
  refuse(R"("peft_type": "PREFIX_TUNING")", "LORA adapters only");
  refuse(R"("layers_pattern": "h")", "layers_pattern");
  refuse(R"("lora_dropout": 1.5)", "lora_dropout");
  EXPECT_MENTIONS(error_of([] { peft_config_parse(R"({"r": 4, "target_modules": ".*q_proj"})", "c"); }), "regex");
  EXPECT_MENTIONS(error_of([] { peft_config_parse(R"({"r": 4})", "c"); }), "'target_modules' is missing");
}

TEST(PeftAdapter, TargetModuleTheBaseLacksIsRefused) {
  const std::string e =
      error_of([] { peft_config_parse(R"({"r": 4, "target_modules": ["q_proj", "c_attn"]})", "dir/cfg.json"); });
  EXPECT_MENTIONS(e, "dir/cfg.json");
  EXPECT_MENTIONS(e, "target module 'c_attn' is not a linear layer");
}

TEST(PeftAdapter, SaveThenLoadRoundTripsExactly) {
  testing::TempDir tmp;
  torch::manual_seed(5);
  LoraConfig c = peft_config_parse(kQvConfig, "cfg.json");
  c.use_rslora = true;
  c.layers_to_transform = {1};
  const LoraAdapter a = lora_adapter_init("mine", c, testing::tiny_llama_config(), 0.3);
  const std::string dir = tmp / "out";
  peft_adapter_save(a, dir);
  peft_adapter_save(a, dir);  // over an existing adapter
  EXPECT_FALSE(fs::exists(dir + ".partial"));
  EXPECT_TRUE(fs::exists(dir + "/adapter_config.json"));
  const LoraAdapter b = peft_adapter_load(dir, testing::tiny_llama_config());
  EXPECT_EQ(b.name, "out");
  EXPECT_EQ(peft_adapter_load(dir + "/", testing::tiny_llama_config()).name, "out");
  EXPECT_EQ(b.config.use_rslora, true);
  EXPECT_EQ(b.config.layers_to_transform, std::vector<int64_t>{1});
  ASSERT_EQ(b.weights.size(), a.weights.size());
  for (const auto& [key, w] : a.weights) {
    EXPECT_TRUE(torch::equal(b.weights.at(key).A, w.A));
    EXPECT_TRUE(torch::equal(b.weights.at(key).B, w.B));
  }
  SafetensorsFile f(dir + "/adapter_model.safetensors");
  EXPECT_TRUE(f.has("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"));
  EXPECT_EQ(f.entries().size(), 4u);
}

TEST(PeftAdapter, LoadsHalfPrecisionWeightsAsFloat32) {
  testing::TempDir tmp;
  const std::string dir = write_adapter(tmp, "half", kQvConfig, [](auto& t) {
    for (auto& [k, v] : t) v = v.to(torch::kHalf);
  });
  const LoraAdapter a = peft_adapter_load(dir, testing::tiny_llama_config(), "named");
  EXPECT_EQ(a.name, "named");
  EXPECT_EQ(a.weights.at({0, LinearModule::q_proj}).A.scalar_type(), torch::kFloat32);
}

TEST(PeftAdapter, MissingConfigOrWeightsNameTheDirectory) {
  testing::TempDir tmp;
  const std::string dir = write_adapter(tmp, "noconfig", kQvConfig);
  fs::remove(dir + "/adapter_config.json");
  std::string e = error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config()); });
  EXPECT_MENTIONS(e, dir);
  EXPECT_MENTIONS(e, "missing adapter_config.json");

  const std::string bin = write_adapter(tmp, "bin", kQvConfig);
  fs::rename(bin + "/adapter_model.safetensors", bin + "/adapter_model.bin");
  e = error_of([&] { peft_adapter_load(bin, testing::tiny_llama_config()); });
  EXPECT_MENTIONS(e, bin);
  EXPECT_MENTIONS(e, "adapter_model.bin");
  EXPECT_MENTIONS(e, "safe_serialization=True");

  EXPECT_MENTIONS(error_of([&] { peft_adapter_load(tmp / "nowhere", testing::tiny_llama_config()); }), "does not exist");
}

TEST(PeftAdapter, MissingTensorIsNamed) {
  testing::TempDir tmp;
  const std::string key = peft_tensor_key(1, LinearModule::v_proj, 'B');
  const std::string dir = write_adapter(tmp, "missing", kQvConfig, [&](auto& t) { t.erase(key); });
  const std::string e = error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config()); });
  EXPECT_MENTIONS(e, dir + "/adapter_model.safetensors");
  EXPECT_MENTIONS(e, "missing tensor '" + key + "'");
}

TEST(PeftAdapter, TensorOfWrongShapeIsNamed) {
  testing::TempDir tmp;
  const std::string key = peft_tensor_key(0, LinearModule::q_proj, 'A');
  const std::string dir = write_adapter(tmp, "shape", kQvConfig, [&](auto& t) { t[key] = torch::randn({5, 16}); });
  const std::string e = error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config()); });
  EXPECT_MENTIONS(e, "adapter_model.safetensors");
  EXPECT_MENTIONS(e, "'" + key + "' has shape [5, 16], expected [4, 16]");
}

TEST(PeftAdapter, AdapterForAnotherBaseDoesNotFit) {
  testing::TempDir tmp;
  const std::string dir = write_adapter(tmp, "other", kQvConfig);
  std::string e = error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config(32)); });  // base twice as wide
  EXPECT_MENTIONS(e, dir);
  EXPECT_MENTIONS(
      e, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 16], expected [4, 32]");
  e = error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config(16, 1)); });  // base with one layer
  EXPECT_MENTIONS(e, "layers.1.");
  EXPECT_MENTIONS(e, "the base has 1 layers");
}

TEST(PeftAdapter, LayerToTransformBeyondBaseIsNamed) {
  testing::TempDir tmp;
  std::string config = kQvConfig;
  config.replace(config.find("\"layers_to_transform\": null"), 27, "\"layers_to_transform\": [0, 4]");
  const std::string dir = write_adapter(tmp, "deep", config, [](auto& t) {
    for (auto it = t.begin(); it != t.end();)
      it = it->first.find("layers.1.") != std::string::npos ? t.erase(it) : ++it;
  });
  const std::string e = error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config()); });
  EXPECT_MENTIONS(e, dir + "/adapter_config.json");
  EXPECT_MENTIONS(e, "layers_to_transform names layer 4");
}

TEST(PeftAdapter, UnexpectedOrUntargetedTensorsAreNamed) {
  testing::TempDir tmp;
  std::string dir = write_adapter(tmp, "extra", kQvConfig, [](auto& t) {
    t["base_model.model.lm_head.lora_A.weight"] = torch::randn({4, 16});
  });
  EXPECT_MENTIONS(error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config()); }),
                  "unexpected tensor 'base_model.model.lm_head.lora_A.weight'");
  dir = write_adapter(tmp, "untargeted", kQvConfig, [](auto& t) {
    t[peft_tensor_key(0, LinearModule::k_proj, 'A')] = torch::randn({4, 16});
  });
  EXPECT_MENTIONS(error_of([&] { peft_adapter_load(dir, testing::tiny_llama_config()); }),
                  "'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight' is for a module that "
                  "adapter_config.json does not target");
}

}  // namespace
}  // namespace kmoe
