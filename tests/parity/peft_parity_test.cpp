// kmoe's LoRA against PEFT on the small random LLaMA and the three adapters that
// peft_reference.py wrote: logits unmerged and merged, switching adapters over one resident
// base, bit-exact restore, and adapters kmoe saves loaded back by PEFT.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "data/formats/hf_checkpoint.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/safetensors.h"
#include "model/llama.h"
#include "model/lora.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

namespace fs = std::filesystem;

const char* const kAdapters[] = {"qv", "all_linear", "kod_layer1"};
constexpr double kTol = 1e-4;

std::string peft_dir() {
  const char* d = std::getenv("KMOE_PARITY_DIR");
  if (!d) throw std::runtime_error("KMOE_PARITY_DIR is not set; run through ctest or set it");
  return std::string(d) + "/peft";
}

struct PeftParity : ::testing::Test {
  ModelConfig config;
  LlamaModel model;
  std::map<std::string, at::Tensor> refs;
  at::Tensor ids, mask;

  void SetUp() override {
    const std::string base = peft_dir() + "/base";
    config = hf_config_load(base);
    model = llama_from_weights(config, hf_weights_load(base), torch::kCPU, torch::kFloat32);
    SafetensorsFile f(peft_dir() + "/refs.safetensors");
    for (const auto& [name, entry] : f.entries()) refs[name] = f.tensor(name);
    ids = refs.at("input_ids");
    mask = refs.at("attention_mask");
  }

  LoraAdapter load(const std::string& name) { return peft_adapter_load(peft_dir() + "/adapters/" + name, config); }
  at::Tensor logits(const LinearHook* hook) {
    torch::NoGradGuard no_grad;
    return llama_forward(model, ids, mask, nullptr, hook);
  }
  LinearWeightFn weights() {
    return [this](int64_t layer, LinearModule m) { return llama_linear_weight(model, layer, m); };
  }
};

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST_F(PeftParity, EachAdapterMatchesPeftUnmergedAndMerged) {
  const double base_diff = max_diff(logits(nullptr), refs.at("base_logits"));
  std::cout << "base: max |kmoe - HF| = " << base_diff << "\n";
  EXPECT_LT(base_diff, kTol);
  for (const char* name : kAdapters) {
    LoraSet set(config);
    set.add(load(name));
    set.activate(name);
    const double unmerged = max_diff(logits(&set), refs.at(std::string("logits_") + name));
    set.merge(weights());
    const double merged = max_diff(logits(&set), refs.at(std::string("merged_logits_") + name));
    set.restore();
    std::cout << name << ": max |kmoe - PEFT| unmerged = " << unmerged << ", merged = " << merged << "\n";
    EXPECT_LT(unmerged, kTol) << name;
    EXPECT_LT(merged, kTol) << name;
    // The adapter must matter, or the comparison above proves nothing.
    EXPECT_GT(max_diff(refs.at(std::string("logits_") + name), refs.at("base_logits")), 0.5) << name;
  }
}

TEST_F(PeftParity, SwitchingAdaptersOverOneResidentBase) {
  LoraSet set(config);
  for (const char* name : kAdapters) set.add(load(name));
  const at::Tensor q0 = llama_linear_weight(model, 0, LinearModule::q_proj);
  const void* storage = q0.data_ptr();
  const at::Tensor q0_before = q0.clone();
  for (const char* name : {"kod_layer1", "qv", "all_linear", "qv", "kod_layer1"}) {
    set.activate(name);
    const double d = max_diff(logits(&set), refs.at(std::string("logits_") + name));
    EXPECT_LT(d, kTol) << name;
  }
  set.deactivate();
  EXPECT_LT(max_diff(logits(&set), refs.at("base_logits")), kTol);
  EXPECT_EQ(llama_linear_weight(model, 0, LinearModule::q_proj).data_ptr(), storage);
  EXPECT_TRUE(torch::equal(llama_linear_weight(model, 0, LinearModule::q_proj), q0_before));
}

TEST_F(PeftParity, RestoreGivesBaseLogitsBitExactly) {
  const at::Tensor before = logits(nullptr);
  LoraSet set(config);
  for (const char* name : kAdapters) set.add(load(name));
  for (const char* name : kAdapters) {
    set.activate(name);
    set.merge(weights());
    EXPECT_FALSE(torch::equal(logits(nullptr), before)) << name;  // the merge changed the base
    set.restore();
    const at::Tensor after = logits(nullptr);
    ASSERT_EQ(std::memcmp(after.data_ptr(), before.data_ptr(), before.numel() * sizeof(float)), 0) << name;
  }
}

// Saves `adapter`, has PEFT load it over the same base and compute logits, and compares them
// with kmoe's logits for the adapter.
double peft_diff_of_saved(PeftParity& t, const LoraAdapter& adapter, const testing::TempDir& tmp) {
  const std::string dir = tmp / adapter.name;
  peft_adapter_save(adapter, dir);
  const std::string out = tmp / (adapter.name + "_logits.safetensors");
  const char* python = std::getenv("KMOE_REF_PYTHON");
  if (!python) throw std::runtime_error("KMOE_REF_PYTHON is not set; run through ctest or set it");
  const std::string script = (fs::path(KMOE_PARITY_SOURCE_DIR) / "peft_check_saved.py").string();
  const std::string cmd = std::string(python) + " " + script + " " + peft_dir() + "/base " + dir + " " + peft_dir() +
                          "/refs.safetensors " + out + " 2>" + (tmp / "python.log");
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(tmp / "python.log");
    throw std::runtime_error("PEFT could not load " + dir + ":\n" +
                             std::string(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>()));
  }
  LoraSet set(t.config);
  set.add(adapter);
  set.activate(adapter.name);
  return max_diff(t.logits(&set), SafetensorsFile(out).tensor("logits"));
}

TEST_F(PeftParity, AdaptersKmoeSavesLoadInPeftWithTheSameLogits) {
  testing::TempDir tmp;
  LoraAdapter edited = load("qv");
  edited.name = "qv_edited";
  for (auto& [key, w] : edited.weights) w.B = w.B * -1.5 + 0.01;
  const double d_edited = peft_diff_of_saved(*this, edited, tmp);

  torch::manual_seed(11);
  LoraConfig c;
  c.r = 3;
  c.lora_alpha = 7;
  c.use_rslora = true;
  c.target_modules = {LinearModule::k_proj, LinearModule::gate_proj, LinearModule::up_proj};
  c.layers_to_transform = {0};
  const LoraAdapter fresh = lora_adapter_init("fresh", c, config, 0.3);
  const double d_fresh = peft_diff_of_saved(*this, fresh, tmp);
  std::cout << "saved by kmoe, loaded by PEFT: max |kmoe - PEFT| edited qv = " << d_edited << ", fresh = " << d_fresh
            << "\n";
  EXPECT_LT(d_edited, kTol);
  EXPECT_LT(d_fresh, kTol);
}

}  // namespace
}  // namespace kmoe
