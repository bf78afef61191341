#include "evaluator/expert_drift.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "data/formats/moe_file.h"
#include "data/formats/peft_adapter.h"
#include "data/store/artifact.h"
#include "data/store/content_hash.h"
#include "runtime/mpi_world.h"
#include "temp_dir.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

LoraAdapter drift_expert(const std::string& name, double alpha) {
  LoraConfig c;
  c.r = 4;
  c.lora_alpha = alpha;
  c.target_modules = {LinearModule::v_proj, LinearModule::down_proj};
  c.layers_to_transform = {0, 2};
  return lora_adapter_init(name, c, testing::tiny_llama_config(16, 3), 0.5);
}

// Two bank adapters saved as PEFT folders, a mixture made from them whose expert 0 is its
// adapter with B tripled and whose expert 1 is replaced by other random weights, written to
// moe.h5 with the adapters as inputs adapter/0 and adapter/1, as `kmoe train --mode moe` does.
struct DriftFixture {
  testing::TempDir dir;
  std::string moe_path = dir / "moe.h5";
  std::vector<std::string> adapter_dirs{dir / "bank_a", dir / "bank_b"};
  std::vector<LoraAdapter> bank{drift_expert("bank_a", 8), drift_expert("bank_b", 4)};
  MoeLora moe{testing::tiny_llama_config(16, 3), bank, MoeConfig{}, 3};

  DriftFixture() {
    for (size_t e = 0; e < 2; ++e) peft_adapter_save(bank[e], adapter_dirs[e]);
    torch::manual_seed(11);
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, t] : moe.trainable_parameters()) {
        if (name.find(".experts.0.lora_B") != std::string::npos) t.mul_(3.0);
        if (name.find(".experts.1.") != std::string::npos) t.copy_(torch::randn_like(t));
      }
    }
    Provenance p;
    p.stage = "train";
    p.kmoe_version = "0.1.0";
    p.options_json = "{}";
    for (size_t e = 0; e < 2; ++e)
      p.inputs.push_back({"adapter/" + std::to_string(e), adapter_dirs[e], content_hash(adapter_dirs[e])});
    ArtifactWriter w(mpi_world().comm, moe_path, p);
    moe_write(w, moe);
    w.commit();
  }
};

TEST(ExpertDrift, MatchesTheFullProductsOverAllModules) {
  DriftFixture f;
  const ExpertDriftResult d = expert_drift(f.moe_path);
  ASSERT_TRUE(d.unavailable.empty()) << d.unavailable;
  ASSERT_EQ(d.experts.size(), 2u);
  EXPECT_EQ(d.experts[0].expert, "bank_a");
  EXPECT_EQ(d.experts[1].adapter_dir, f.adapter_dirs[1]);
  // Expert 0 is 3 x its adapter: norm ratio 3, change 2, cosine 1.
  EXPECT_NEAR(d.experts[0].norm_ratio, 3.0, 1e-6);
  EXPECT_NEAR(d.experts[0].change, 2.0, 1e-6);
  EXPECT_NEAR(d.experts[0].cosine, 1.0, 1e-6);
  // Expert 1 against the out x in products, formed explicitly (the adapter as saved: the
  // mixture's experts may share storage with `bank`).
  const LoraAdapter saved = peft_adapter_load(f.adapter_dirs[1], testing::tiny_llama_config(16, 3));
  double trained = 0, init = 0, diff = 0, cross = 0;
  for (const LoraKey& key : f.moe.keys()) {
    const auto& w = f.moe.experts()[1].weights.at(key);
    const auto& w0 = saved.weights.at(key);
    const at::Tensor dw = w.B.to(torch::kFloat64).mm(w.A.to(torch::kFloat64));
    const at::Tensor dw0 = w0.B.to(torch::kFloat64).mm(w0.A.to(torch::kFloat64));
    trained += dw.pow(2).sum().item<double>();
    init += dw0.pow(2).sum().item<double>();
    diff += (dw - dw0).pow(2).sum().item<double>();
    cross += (dw * dw0).sum().item<double>();
  }
  EXPECT_NEAR(d.experts[1].norm_ratio, std::sqrt(trained / init), 1e-6);
  EXPECT_NEAR(d.experts[1].change, std::sqrt(diff / init), 1e-6);
  EXPECT_NEAR(d.experts[1].cosine, cross / std::sqrt(trained * init), 1e-6);
  EXPECT_GT(d.experts[1].change, 1.0);  // independent weights: not along the adapter
  EXPECT_LT(std::abs(d.experts[1].cosine), 0.5);
}

TEST(ExpertDrift, SaysWhyWhenAnAdapterIsGoneOrChanged) {
  DriftFixture f;
  peft_adapter_save(drift_expert("bank_b", 2), f.adapter_dirs[1]);  // other weights, same folder
  ExpertDriftResult d = expert_drift(f.moe_path);
  EXPECT_TRUE(d.experts.empty());
  EXPECT_NE(d.unavailable.find("adapter/1 (" + f.adapter_dirs[1] + ") has changed since training"), std::string::npos)
      << d.unavailable;
  std::filesystem::remove_all(f.adapter_dirs[0]);
  d = expert_drift(f.moe_path);
  EXPECT_NE(d.unavailable.find("adapter/0 (" + f.adapter_dirs[0] + ") no longer exists"), std::string::npos)
      << d.unavailable;
}

}  // namespace
}  // namespace kmoe
