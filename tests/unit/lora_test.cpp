#include "model/lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "tests/unit/error_of.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

LoraConfig qv_config(int64_t r = 4, double alpha = 8) {
  LoraConfig c;
  c.r = r;
  c.lora_alpha = alpha;
  c.target_modules = {LinearModule::q_proj, LinearModule::v_proj};
  return c;
}

// Base weights [out, in] for every linear layer, as the decoder would hold them.
std::map<LoraKey, at::Tensor> base_weights(const ModelConfig& base) {
  std::map<LoraKey, at::Tensor> w;
  for (int64_t l = 0; l < base.num_hidden_layers; ++l) {
    for (int m = 0; m <= static_cast<int>(LinearModule::down_proj); ++m) {
      const auto mod = static_cast<LinearModule>(m);
      const auto [in, out] = linear_features(base, mod);
      w[{l, mod}] = torch::randn({out, in});
    }
  }
  return w;
}

TEST(Lora, ScaleIsAlphaOverROrOverSqrtRWithRslora) {
  LoraConfig c = qv_config(16, 32);
  EXPECT_DOUBLE_EQ(lora_scale(c), 2.0);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(lora_scale(c), 8.0);
}

TEST(Lora, LinearFeaturesFollowGroupedQueryShapes) {
  const ModelConfig b = testing::tiny_llama_config();
  EXPECT_EQ(linear_features(b, LinearModule::q_proj), (std::pair<int64_t, int64_t>{16, 16}));
  EXPECT_EQ(linear_features(b, LinearModule::k_proj), (std::pair<int64_t, int64_t>{16, 8}));
  EXPECT_EQ(linear_features(b, LinearModule::o_proj), (std::pair<int64_t, int64_t>{16, 16}));
  EXPECT_EQ(linear_features(b, LinearModule::up_proj), (std::pair<int64_t, int64_t>{16, 24}));
  EXPECT_EQ(linear_features(b, LinearModule::down_proj), (std::pair<int64_t, int64_t>{24, 16}));
  EXPECT_EQ(lora_module_path(1, LinearModule::down_proj), "model.layers.1.mlp.down_proj");
  EXPECT_EQ(lora_module_path(0, LinearModule::k_proj), "model.layers.0.self_attn.k_proj");
}

TEST(Lora, InitCreatesTargetedPairsWithZeroBAndPeftBoundsOnA) {
  torch::manual_seed(0);
  const auto a = lora_adapter_init("a", qv_config(), testing::tiny_llama_config());
  ASSERT_EQ(a.weights.size(), 4u);  // 2 layers × {q, v}
  const auto& w = a.weights.at({1, LinearModule::v_proj});
  EXPECT_EQ(w.A.sizes(), torch::IntArrayRef({4, 16}));
  EXPECT_EQ(w.B.sizes(), torch::IntArrayRef({8, 4}));
  EXPECT_EQ(w.B.abs().max().item<float>(), 0.0f);
  EXPECT_LE(w.A.abs().max().item<float>(), 0.25f);  // 1/sqrt(16)
  EXPECT_GT(w.A.abs().max().item<float>(), 0.1f);
}

TEST(Lora, DeltaIsScaledLowRankProductOfX) {
  torch::manual_seed(1);
  const ModelConfig base = testing::tiny_llama_config();
  LoraSet set(base);
  set.add(lora_adapter_init("a", qv_config(4, 8), base, 0.5));
  const auto x = torch::randn({2, 3, 16});
  EXPECT_FALSE(set.delta(0, LinearModule::q_proj, x).defined());  // nothing active
  set.activate("a");
  const auto& w = set.adapter("a").weights.at({0, LinearModule::q_proj});
  const auto want = torch::matmul(torch::matmul(x, w.A.t()), w.B.t()) * 2.0;
  const auto got = set.delta(0, LinearModule::q_proj, x);
  ASSERT_EQ(got.sizes(), torch::IntArrayRef({2, 3, 16}));
  EXPECT_TRUE(torch::equal(got, want));
  EXPECT_GT(got.abs().max().item<float>(), 0.1f);
  EXPECT_FALSE(set.delta(0, LinearModule::k_proj, x).defined());  // not targeted
  // The delta comes back in x's dtype.
  EXPECT_EQ(set.delta(0, LinearModule::q_proj, x.to(torch::kDouble)).scalar_type(), torch::kDouble);
}

TEST(Lora, LayersToTransformLimitsTheLayersAdapted) {
  const ModelConfig base = testing::tiny_llama_config();
  LoraConfig c = qv_config();
  c.layers_to_transform = {1};
  LoraSet set(base);
  set.add(lora_adapter_init("a", c, base, 0.5));
  set.activate("a");
  EXPECT_EQ(set.adapter("a").weights.size(), 2u);
  const auto x = torch::randn({1, 2, 16});
  EXPECT_FALSE(set.delta(0, LinearModule::q_proj, x).defined());
  EXPECT_TRUE(set.delta(1, LinearModule::q_proj, x).defined());
}

TEST(Lora, SwitchingAdaptersChangesDeltaAndLeavesBaseUntouched) {
  torch::manual_seed(2);
  const ModelConfig base = testing::tiny_llama_config();
  auto weights = base_weights(base);
  const auto before = weights.at({0, LinearModule::q_proj}).clone();
  const void* storage = weights.at({0, LinearModule::q_proj}).data_ptr();
  LoraSet set(base);
  set.add(lora_adapter_init("a", qv_config(4, 8), base, 0.5));
  LoraConfig all = qv_config(2, 4);
  all.target_modules = {LinearModule::q_proj,    LinearModule::k_proj,  LinearModule::v_proj,   LinearModule::o_proj,
                        LinearModule::gate_proj, LinearModule::up_proj, LinearModule::down_proj};
  all.use_rslora = true;
  set.add(lora_adapter_init("b", all, base, 0.5));
  EXPECT_EQ(set.names(), (std::vector<std::string>{"a", "b"}));
  const auto x = torch::randn({1, 4, 16});
  set.activate("a");
  const auto da = set.delta(0, LinearModule::q_proj, x);
  set.activate("b");
  const auto db = set.delta(0, LinearModule::q_proj, x);
  EXPECT_TRUE(set.delta(1, LinearModule::gate_proj, x).defined());
  set.activate("a");
  EXPECT_TRUE(torch::equal(set.delta(0, LinearModule::q_proj, x), da));
  EXPECT_FALSE(torch::allclose(da, db));
  EXPECT_TRUE(torch::equal(weights.at({0, LinearModule::q_proj}), before));
  EXPECT_EQ(weights.at({0, LinearModule::q_proj}).data_ptr(), storage);
  set.deactivate();
  EXPECT_FALSE(set.delta(0, LinearModule::q_proj, x).defined());
  EXPECT_THROW(set.activate("missing"), std::invalid_argument);
  set.remove("b");
  EXPECT_FALSE(set.has("b"));
}

TEST(Lora, MergeAddsScaledBAAndRestoreIsBitExact) {
  torch::manual_seed(3);
  const ModelConfig base = testing::tiny_llama_config();
  auto weights = base_weights(base);
  std::map<LoraKey, at::Tensor> original;
  for (const auto& [k, w] : weights) original[k] = w.clone();
  const LinearWeightFn weight_of = [&](int64_t l, LinearModule m) { return weights.at({l, m}); };

  LoraSet set(base);
  LoraConfig c = qv_config(4, 6);
  c.use_rslora = true;
  set.add(lora_adapter_init("a", c, base, 0.5));
  set.activate("a");
  const auto x = torch::randn({2, 3, 16});
  const auto& w0 = weights.at({1, LinearModule::v_proj});
  const auto unmerged = torch::matmul(x, w0.t()) + set.delta(1, LinearModule::v_proj, x);

  set.merge(weight_of);
  EXPECT_TRUE(set.merged());
  EXPECT_FALSE(set.delta(1, LinearModule::v_proj, x).defined());  // the base carries it now
  const auto& ab = set.adapter("a").weights.at({1, LinearModule::v_proj});
  const auto want = original.at({1, LinearModule::v_proj}) + ab.B.matmul(ab.A) * lora_scale(c);
  EXPECT_TRUE(torch::equal(weights.at({1, LinearModule::v_proj}), want));
  EXPECT_LT((torch::matmul(x, weights.at({1, LinearModule::v_proj}).t()) - unmerged).abs().max().item<float>(), 1e-5);
  EXPECT_TRUE(torch::equal(weights.at({0, LinearModule::k_proj}), original.at({0, LinearModule::k_proj})));
  EXPECT_THROW(set.activate(""), std::invalid_argument);  // switching while merged
  EXPECT_THROW(set.merge(weight_of), std::invalid_argument);

  set.restore();
  EXPECT_FALSE(set.merged());
  for (const auto& [k, w] : weights) {
    ASSERT_EQ(std::memcmp(w.data_ptr(), original.at(k).data_ptr(), w.numel() * sizeof(float)), 0)
        << lora_module_path(k.first, k.second);
  }
  EXPECT_TRUE(set.delta(1, LinearModule::v_proj, x).defined());
}

TEST(Lora, MergeWithoutActiveAdapterOrIntoWrongShapedBaseFails) {
  const ModelConfig base = testing::tiny_llama_config();
  LoraSet set(base);
  set.add(lora_adapter_init("a", qv_config(), base, 0.5));
  const LinearWeightFn wrong = [](int64_t, LinearModule) { return torch::zeros({3, 3}); };
  EXPECT_THROW(set.merge(wrong), std::invalid_argument);
  set.activate("a");
  const std::string e = error_of([&] { set.merge(wrong); });
  EXPECT_NE(e.find("adapter 'a'"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << e;
  EXPECT_FALSE(set.merged());
}

TEST(Lora, DropoutAppliesOnlyWhileTraining) {
  torch::manual_seed(4);
  const ModelConfig base = testing::tiny_llama_config();
  LoraConfig c = qv_config();
  c.lora_dropout = 0.5;
  LoraSet set(base);
  set.add(lora_adapter_init("a", c, base, 0.5));
  set.activate("a");
  const auto x = torch::randn({2, 5, 16});
  const auto eval1 = set.delta(0, LinearModule::q_proj, x);
  EXPECT_TRUE(torch::equal(eval1, set.delta(0, LinearModule::q_proj, x)));
  set.set_training(true);
  const auto train = set.delta(0, LinearModule::q_proj, x);
  EXPECT_FALSE(torch::allclose(train, eval1));
  set.set_training(false);
  EXPECT_TRUE(torch::equal(eval1, set.delta(0, LinearModule::q_proj, x)));
}

TEST(Lora, WeightsAreTrainableLeaves) {
  const ModelConfig base = testing::tiny_llama_config();
  LoraSet set(base);
  set.add(lora_adapter_init("a", qv_config(), base, 0.5));
  lora_adapter_requires_grad(set.adapter("a"), true);
  set.activate("a");
  auto& w = set.adapter("a").weights.at({0, LinearModule::q_proj});
  EXPECT_TRUE(w.A.is_leaf());
  EXPECT_TRUE(w.A.requires_grad());
  set.delta(0, LinearModule::q_proj, torch::randn({1, 2, 16})).sum().backward();
  ASSERT_TRUE(w.A.grad().defined());
  ASSERT_TRUE(w.B.grad().defined());
  EXPECT_GT(w.B.grad().abs().sum().item<float>(), 0.0f);
}

TEST(Lora, MovingToBaseDtypeKeepsTrainableLeaves) {
  auto a = lora_adapter_init("a", qv_config(), testing::tiny_llama_config(), 0.5);
  lora_adapter_requires_grad(a, true);
  const auto a_before = a.weights.at({0, LinearModule::q_proj}).A.clone();
  lora_adapter_to(a, torch::kCPU, torch::kDouble);
  const auto& w = a.weights.at({0, LinearModule::q_proj});
  EXPECT_EQ(w.A.scalar_type(), torch::kDouble);
  EXPECT_EQ(w.B.scalar_type(), torch::kDouble);
  EXPECT_TRUE(w.A.is_leaf());
  EXPECT_TRUE(w.A.requires_grad());
  EXPECT_TRUE(torch::equal(w.A.to(torch::kFloat), a_before));
}

TEST(Lora, ValidationNamesAdapterAndTensor) {
  const ModelConfig base = testing::tiny_llama_config();
  {
    LoraConfig c = qv_config();
    c.layers_to_transform = {5};
    const std::string e = error_of([&] { lora_adapter_init("deep", c, base); });
    EXPECT_NE(e.find("adapter 'deep'"), std::string::npos) << e;
    EXPECT_NE(e.find("layer 5"), std::string::npos) << e;
  }
  auto good = lora_adapter_init("x", qv_config(), base);
  {
    auto a = good;
    a.weights[{0, LinearModule::q_proj}].A = torch::zeros({4, 32});  // base q_proj takes 16
    const std::string e = error_of([&] { lora_adapter_validate(a, base); });
    EXPECT_NE(e.find("adapter 'x'"), std::string::npos) << e;
    EXPECT_NE(e.find("model.layers.0.self_attn.q_proj.lora_A"), std::string::npos) << e;
  }
  {
    auto a = good;
    a.weights[{1, LinearModule::v_proj}].B = torch::zeros({16, 4});  // base v_proj gives 8
    const std::string e = error_of([&] { lora_adapter_validate(a, base); });
    EXPECT_NE(e.find("model.layers.1.self_attn.v_proj.lora_B"), std::string::npos) << e;
  }
  {
    auto a = good;
    a.weights.erase({1, LinearModule::q_proj});
    const std::string e = error_of([&] { lora_adapter_validate(a, base); });
    EXPECT_NE(e.find("missing LoRA weights for model.layers.1.self_attn.q_proj"), std::string::npos) << e;
  }
  {
    auto a = good;
    a.weights[{0, LinearModule::up_proj}] = {torch::zeros({4, 16}), torch::zeros({24, 4})};
    const std::string e = error_of([&] { lora_adapter_validate(a, base); });
    EXPECT_NE(e.find("model.layers.0.mlp.up_proj"), std::string::npos) << e;
  }
  {
    auto a = good;
    a.weights[{7, LinearModule::q_proj}] = {torch::zeros({4, 16}), torch::zeros({16, 4})};
    const std::string e = error_of([&] { lora_adapter_validate(a, base); });
    EXPECT_NE(e.find("model.layers.7.self_attn.q_proj: layer 7 is beyond"), std::string::npos) << e;
  }
  LoraSet set(base);
  set.add(good);
  EXPECT_NE(error_of([&] { set.add(good); }).find("already loaded"), std::string::npos);
}

}  // namespace
}  // namespace kmoe
