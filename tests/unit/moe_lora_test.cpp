#include "model/moe_lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tiny_llama.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

LoraAdapter expert(const std::string& name, int64_t r = 4, double alpha = 8, bool rslora = false,
                   std::vector<LinearModule> targets = {LinearModule::q_proj, LinearModule::v_proj},
                   std::vector<int64_t> layers = {}) {
  LoraConfig c;
  c.r = r;
  c.lora_alpha = alpha;
  c.use_rslora = rslora;
  c.target_modules = std::move(targets);
  c.layers_to_transform = std::move(layers);
  return lora_adapter_init(name, c, testing::tiny_llama_config(), /*b_std=*/0.5);
}

LoraAdapter copy_named(const LoraAdapter& a, const std::string& name) {
  LoraAdapter c = a;
  c.name = name;
  return c;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// The mixture for one token x [in] by the formula, expert by expert: softmax, the k most
// probable experts, gates renormalised over them.
at::Tensor per_token_delta(const MoeLora& moe, const LoraKey& key, int64_t key_index, const at::Tensor& x) {
  const int64_t n = moe.expert_count();
  const at::Tensor probs = torch::softmax(torch::mv(moe.routers()[key_index], x), 0);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return probs[a].item<float>() > probs[b].item<float>(); });
  const int64_t k = std::min(moe.config().top_k, n);
  double total = 0;
  for (int64_t i = 0; i < k; ++i) total += probs[order[i]].item<double>();
  at::Tensor out;
  for (int64_t i = 0; i < k; ++i) {
    const LoraAdapter& e = moe.experts()[order[i]];
    const LoraWeights& w = e.weights.at(key);
    const at::Tensor y =
        torch::mv(w.B, torch::mv(w.A, x)) * (probs[order[i]].item<double>() / total) * lora_scale(e.config);
    out = out.defined() ? out + y : y;
  }
  return out;
}

TEST(MoeLora, OneExpertWithTopOneEqualsTheAdapter) {
  torch::manual_seed(1);
  const LoraAdapter a = expert("a", 4, 8, /*rslora=*/true);
  MoeConfig mc;
  mc.top_k = 1;
  const MoeLora moe(testing::tiny_llama_config(), {a}, mc, /*seed=*/7);
  LoraSet set(testing::tiny_llama_config());
  set.add(a);
  set.activate("a");
  const at::Tensor x = torch::randn({2, 5, 16});
  for (int64_t layer : {0, 1}) {
    for (LinearModule m : {LinearModule::q_proj, LinearModule::v_proj}) {
      EXPECT_LT(max_diff(moe.delta(layer, m, x), set.delta(layer, m, x)), 1e-6);
    }
  }
  EXPECT_FALSE(moe.delta(0, LinearModule::k_proj, x).defined());
}

TEST(MoeLora, IdenticalExpertsEqualOneAdapter) {
  torch::manual_seed(2);
  const LoraAdapter a = expert("a");
  MoeConfig mc;
  mc.top_k = 2;
  const MoeLora moe(testing::tiny_llama_config(), {a, copy_named(a, "b"), copy_named(a, "c")}, mc, 3);
  LoraSet set(testing::tiny_llama_config());
  set.add(a);
  set.activate("a");
  const at::Tensor x = torch::randn({3, 4, 16});
  EXPECT_LT(max_diff(moe.delta(1, LinearModule::v_proj, x), set.delta(1, LinearModule::v_proj, x)), 1e-5);
}

TEST(MoeLora, GatingMatchesAPerTokenLoop) {
  torch::manual_seed(3);
  // different alphas and rslora: each expert keeps its own scale
  std::vector<LoraAdapter> experts = {expert("a", 4, 8), expert("b", 4, 2, true), expert("c", 4, 16),
                                      expert("d", 4, 4)};
  for (int64_t k : {1, 2, 3, 4, 9}) {
    MoeConfig mc;
    mc.top_k = k;
    MoeLora moe(testing::tiny_llama_config(), experts, mc, 11);
    EXPECT_EQ(moe.config().top_k, std::min<int64_t>(k, 4));
    // routers with a wide spread so that the top-k choice differs between tokens
    std::vector<at::Tensor> routers;
    for (size_t i = 0; i < moe.keys().size(); ++i) routers.push_back(torch::randn({4, 16}));
    moe = MoeLora(testing::tiny_llama_config(), experts, mc, routers);
    const at::Tensor x = torch::randn({2, 3, 16});
    for (size_t ki = 0; ki < moe.keys().size(); ++ki) {
      const LoraKey key = moe.keys()[ki];
      const at::Tensor got = moe.delta(key.first, key.second, x);
      for (int64_t b = 0; b < 2; ++b) {
        for (int64_t t = 0; t < 3; ++t) {
          const at::Tensor want = per_token_delta(moe, key, ki, x[b][t]);
          EXPECT_LT(max_diff(got[b][t], want), 1e-5) << "k=" << k << " key " << ki << " token " << b << "," << t;
        }
      }
    }
  }
}

TEST(MoeLora, GradientsReachRoutersAndExperts) {
  torch::manual_seed(4);
  MoeConfig mc;
  mc.top_k = 2;
  MoeLora moe(testing::tiny_llama_config(), {expert("a"), expert("b"), expert("c")}, mc, 5);
  auto params = moe.trainable_parameters();
  ASSERT_EQ(params.size(), 4u * (1 + 3 * 2));  // 4 keys x (router + 3 experts x A, B)
  EXPECT_EQ(params[0].first, "layers.0.q_proj.router");
  EXPECT_EQ(params[3].first, "layers.0.q_proj.experts.1.lora_A");
  EXPECT_EQ(params.back().first, "layers.1.v_proj.experts.2.lora_B");
  const at::Tensor x = torch::randn({2, 6, 16});
  at::Tensor loss = moe.delta(0, LinearModule::q_proj, x).pow(2).sum();
  loss.backward();
  double expert_grad = 0;
  for (const auto& [name, p] : params) {
    ASSERT_TRUE(p.requires_grad()) << name;
    if (name.rfind("layers.0.q_proj.", 0) != 0) {
      EXPECT_FALSE(p.grad().defined()) << name;
      continue;
    }
    ASSERT_TRUE(p.grad().defined()) << name;  // dense: every expert is in the graph, unkept ones with gate 0
    if (name.find(".router") != std::string::npos)
      EXPECT_GT(p.grad().abs().sum().item<double>(), 0);
    else
      expert_grad += p.grad().abs().sum().item<double>();
  }
  EXPECT_GT(expert_grad, 0);

  mc.train_experts = false;
  MoeLora routers_only(testing::tiny_llama_config(), {expert("a"), expert("b"), expert("c")}, mc, 5);
  params = routers_only.trainable_parameters();
  ASSERT_EQ(params.size(), 4u);
  for (const auto& [name, p] : params) EXPECT_NE(name.find(".router"), std::string::npos) << name;
  routers_only.delta(1, LinearModule::v_proj, x).pow(2).sum().backward();
  EXPECT_GT(params[3].second.grad().abs().sum().item<double>(), 0);
  for (const auto& e : routers_only.experts()) {
    for (const auto& [key, w] : e.weights) {
      EXPECT_FALSE(w.A.requires_grad());
      EXPECT_FALSE(w.A.grad().defined());
    }
  }
}

TEST(MoeLora, RouterLoadIsTheGateWeightOfRealTokens) {
  torch::manual_seed(6);
  MoeConfig mc;
  mc.top_k = 2;
  MoeLora moe(testing::tiny_llama_config(), {expert("a"), expert("b"), expert("c")}, mc, 8);
  const at::Tensor x = torch::randn({2, 5, 16});
  const at::Tensor mask = torch::tensor({1, 1, 1, 0, 0, 1, 1, 1, 1, 0}, torch::kInt64).view({2, 5});
  moe.set_token_mask(mask);
  moe.delta(1, LinearModule::q_proj, x);
  moe.delta(1, LinearModule::q_proj, x);  // accumulates
  const at::Tensor load = moe.router_load();
  ASSERT_EQ(load.sizes(), (at::IntArrayRef{4, 3}));
  EXPECT_EQ(load.scalar_type(), torch::kFloat64);
  const int64_t ki = 2;  // (1, q_proj)
  ASSERT_EQ(moe.keys()[ki], (LoraKey{1, LinearModule::q_proj}));
  std::vector<double> want(3, 0);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 5; ++t) {
      if (!mask[b][t].item<int64_t>()) continue;
      const auto [p, idx] = torch::softmax(torch::mv(moe.routers()[ki], x[b][t]), 0).topk(2);
      const double kept = p.sum().item<double>();
      for (int64_t j = 0; j < 2; ++j) want[idx[j].item<int64_t>()] += 2 * p[j].item<double>() / kept;
    }
  }
  for (int64_t e = 0; e < 3; ++e) EXPECT_NEAR(load[ki][e].item<double>(), want[e], 1e-5) << e;
  EXPECT_NEAR(load.sum().item<double>(), 2 * 7, 1e-5);  // 2 forwards x 7 real tokens, gates sum to 1
  EXPECT_EQ(load[0].sum().item<double>(), 0);           // keys without a forward
  moe.reset_statistics();
  EXPECT_EQ(moe.router_load().sum().item<double>(), 0);
  moe.set_token_mask(torch::ones({3, 3}));
  EXPECT_NE(error_of([&] { moe.delta(0, LinearModule::q_proj, x); }).find("token mask"), std::string::npos);
}

TEST(MoeLora, TopOneRouterLoadCountsTokens) {
  torch::manual_seed(7);
  MoeConfig mc;
  mc.top_k = 1;
  MoeLora moe(testing::tiny_llama_config(), {expert("a"), expert("b"), expert("c")}, mc, 8);
  const at::Tensor x = torch::randn({1, 6, 16});
  moe.delta(0, LinearModule::v_proj, x);  // no mask: every token is real
  const int64_t ki = 1;                   // (0, v_proj)
  ASSERT_EQ(moe.keys()[ki], (LoraKey{0, LinearModule::v_proj}));
  std::vector<double> want(3, 0);
  for (int64_t t = 0; t < 6; ++t) want[torch::mv(moe.routers()[ki], x[0][t]).argmax().item<int64_t>()] += 1;
  const at::Tensor load = moe.router_load();
  for (int64_t e = 0; e < 3; ++e) EXPECT_EQ(load[ki][e].item<double>(), want[e]) << e;
}

TEST(MoeLora, RouterLoadByGroupSplitsTokensByTheirMaskValue) {
  torch::manual_seed(11);
  MoeConfig mc;
  mc.top_k = 2;
  MoeLora moe(testing::tiny_llama_config(), {expert("a"), expert("b")}, mc, 12);
  EXPECT_EQ(moe.router_load_by_group().sizes(), (at::IntArrayRef{1, 4, 2}));
  const at::Tensor x = torch::randn({2, 4, 16});
  // row 0: group 0 then a pad; row 1: group 2 (group 1 has no token)
  const at::Tensor mask = torch::tensor({1, 1, 1, 0, 3, 3, 3, 3}, torch::kInt64).view({2, 4});
  moe.set_token_mask(mask);
  moe.delta(0, LinearModule::q_proj, x);
  const at::Tensor by = moe.router_load_by_group();
  ASSERT_EQ(by.sizes(), (at::IntArrayRef{3, 4, 2}));
  const int64_t ki = 0;  // (0, q_proj)
  ASSERT_EQ(moe.keys()[ki], (LoraKey{0, LinearModule::q_proj}));
  at::Tensor want = torch::zeros({3, 2}, torch::kFloat64);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 4; ++t) {
      const int64_t g = mask[b][t].item<int64_t>();
      if (g == 0) continue;
      // N = k = 2: the gates are the softmax itself
      want[g - 1] += torch::softmax(torch::mv(moe.routers()[ki], x[b][t]), 0).to(torch::kFloat64);
    }
  }
  EXPECT_TRUE(torch::allclose(by.select(1, ki), want, 1e-6, 1e-6)) << by.select(1, ki) << want;
  EXPECT_NEAR(by[0][ki].sum().item<double>(), 3, 1e-6);
  EXPECT_EQ(by[1].sum().item<double>(), 0);
  EXPECT_NEAR(by[2][ki].sum().item<double>(), 4, 1e-6);
  EXPECT_TRUE(torch::allclose(by.sum(0), moe.router_load()));
  moe.reset_statistics();  // keeps the groups
  EXPECT_EQ(moe.router_load_by_group().sizes(), (at::IntArrayRef{3, 4, 2}));
  EXPECT_EQ(moe.router_load_by_group().abs().sum().item<double>(), 0);
}

TEST(MoeLora, AuxLossIsTheSwitchFormula) {
  torch::manual_seed(9);
  MoeConfig mc;
  mc.top_k = 2;
  mc.aux_loss_coef = 0.01;
  MoeLora moe(testing::tiny_llama_config(), {expert("a"), expert("b"), expert("c")}, mc, 10);
  moe.trainable_parameters();
  const at::Tensor x = torch::randn({2, 4, 16});
  const at::Tensor mask = torch::tensor({1, 1, 1, 0, 1, 1, 0, 0}, torch::kInt64).view({2, 4});
  moe.set_token_mask(mask);
  EXPECT_EQ(moe.aux_loss().item<double>(), 0);
  moe.delta(0, LinearModule::v_proj, x);
  moe.delta(1, LinearModule::q_proj, x);
  double want = 0;
  for (const LoraKey& key : {LoraKey{0, LinearModule::v_proj}, LoraKey{1, LinearModule::q_proj}}) {
    const int64_t ki = std::find(moe.keys().begin(), moe.keys().end(), key) - moe.keys().begin();
    std::vector<double> f(3, 0), p(3, 0);
    double tokens = 0;
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t t = 0; t < 4; ++t) {
        if (!mask[b][t].item<int64_t>()) continue;
        tokens += 1;
        const at::Tensor probs = torch::softmax(torch::mv(moe.routers()[ki].detach(), x[b][t]), 0);
        for (int64_t e = 0; e < 3; ++e) p[e] += probs[e].item<double>();
        const auto idx = std::get<1>(probs.topk(2));
        for (int64_t j = 0; j < 2; ++j) f[idx[j].item<int64_t>()] += 1;
      }
    }
    double term = 0;
    for (int64_t e = 0; e < 3; ++e) term += (f[e] / (tokens * 2)) * (p[e] / tokens);
    want += 3 * term;
  }
  const at::Tensor aux = moe.aux_loss();
  EXPECT_NEAR(aux.item<double>(), 0.01 * want, 1e-7);
  aux.backward();
  EXPECT_GT(moe.routers()[1].grad().abs().sum().item<double>(), 0);  // (0, v_proj)
  EXPECT_FALSE(moe.routers()[0].grad().defined());                   // (0, q_proj) did not run

  mc.aux_loss_coef = 0;
  MoeLora plain(testing::tiny_llama_config(), {expert("a"), expert("b")}, mc, 10);
  plain.delta(0, LinearModule::v_proj, x);
  EXPECT_EQ(plain.aux_loss().item<double>(), 0);
  EXPECT_EQ(plain.aux_loss().dim(), 0);
}

TEST(MoeLora, ExpertsThatDoNotFitNameBothAdapters) {
  const auto build = [](std::vector<LoraAdapter> experts) {
    return error_of([&] { MoeLora(testing::tiny_llama_config(), std::move(experts), MoeConfig{}, 0); });
  };
  std::string e = build({expert("alpha", 16), expert("beta", 8)});
  EXPECT_NE(e.find("expert 'beta' has r = 8, expert 'alpha' has r = 16"), std::string::npos) << e;
  e = build({expert("alpha"), expert("beta", 4, 8, false, {LinearModule::q_proj, LinearModule::k_proj})});
  EXPECT_NE(e.find("expert 'beta' targets [q_proj, k_proj], expert 'alpha' targets [q_proj, v_proj]"),
            std::string::npos)
      << e;
  e = build({expert("alpha"), expert("beta", 4, 8, false, {LinearModule::q_proj, LinearModule::v_proj}, {1})});
  EXPECT_NE(e.find("expert 'beta' adapts layers [1], expert 'alpha' adapts layers [0, 1]"), std::string::npos) << e;
  LoraAdapter bad = expert("gamma");
  bad.weights.begin()->second.A = torch::zeros({3, 16});
  e = build({expert("alpha"), bad});
  EXPECT_NE(e.find("adapter 'gamma'"), std::string::npos) << e;  // checked against the base
  EXPECT_NE(build({}).find("at least one expert"), std::string::npos);
  EXPECT_NE(error_of([] { MoeLora(testing::tiny_llama_config(), {expert("a")}, MoeConfig{0}, 0); }).find("top_k"), std::string::npos);
}

TEST(MoeLora, DropoutOnlyWhileTrainingAndDtypeFollowsX) {
  torch::manual_seed(12);
  MoeConfig mc;
  mc.expert_dropout = 0.5;
  MoeLora moe(testing::tiny_llama_config(), {expert("a"), expert("b")}, mc, 13);
  const at::Tensor x = torch::randn({1, 4, 16});
  const at::Tensor eval = moe.delta(0, LinearModule::q_proj, x);
  EXPECT_TRUE(torch::equal(eval, moe.delta(0, LinearModule::q_proj, x)));
  moe.set_training(true);
  EXPECT_GT(max_diff(moe.delta(0, LinearModule::q_proj, x), eval), 1e-3);
  moe.set_training(false);
  moe.to(torch::kCPU, torch::kFloat64);
  EXPECT_EQ(moe.experts()[0].weights.begin()->second.A.scalar_type(), torch::kFloat64);
  EXPECT_EQ(moe.routers()[0].scalar_type(), torch::kFloat32);
  const at::Tensor d = moe.delta(0, LinearModule::q_proj, x);
  EXPECT_EQ(d.scalar_type(), torch::kFloat32);
  EXPECT_LT(max_diff(d, eval), 1e-5);
}

}  // namespace
}  // namespace kmoe
