// AdamW and gradient clipping against libtorch's own implementations of the same
// (torch::optim::AdamW, torch::nn::utils::clip_grad_norm_), and the learning-rate
// schedule against the closed-form formulas, written out here independently.
#include "trainer/optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

namespace kmoe {
namespace {

// libtorch keys an optimizer's state by the parameter's TensorImpl address: printed into a
// string up to 1.13, the pointer itself in 2.x.
template <class Optimizer>
torch::optim::OptimizerParamState& optimizer_state_of(Optimizer& optimizer, c10::TensorImpl* impl) {
  auto& states = optimizer.state();
  using Key = typename std::decay_t<decltype(states)>::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << impl;
    return *states.at(key.str());
  } else {
    return *states.at(impl);
  }
}

std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({7, 5}).requires_grad_(), torch::randn({5}).requires_grad_(),
          torch::randn({3, 2, 4}).requires_grad_()};
}

std::vector<torch::Tensor> clones(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

double max_abs_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

// Gives ours[i] and theirs[i] the same gradient, one that depends on the parameter, as a
// real one does.
void set_same_grads(std::vector<torch::Tensor>& ours, std::vector<torch::Tensor>& theirs) {
  for (size_t i = 0; i < ours.size(); ++i) {
    const torch::Tensor g = torch::randn(ours[i].sizes()) + 0.5 * ours[i].detach();
    ours[i].mutable_grad() = g.clone();
    theirs[i].mutable_grad() = g.clone();
  }
}

TEST(Optimizer, AdamWMatchesLibtorchOverTwentyStepsWithWeightDecay) {
  auto ours = make_params(1);
  auto theirs = clones(ours);
  AdamWOptions options;
  options.beta1 = 0.85;
  options.beta2 = 0.99;
  options.eps = 1e-6;
  options.weight_decay = 0.1;
  AdamW adamw(ours, options);
  const double lr = 3e-2;
  torch::optim::AdamW reference(theirs, torch::optim::AdamWOptions(lr).betas({0.85, 0.99}).eps(1e-6).weight_decay(0.1));
  torch::manual_seed(7);
  for (int step = 0; step < 20; ++step) {
    set_same_grads(ours, theirs);
    adamw.step(lr);
    reference.step();
  }
  EXPECT_EQ(adamw.steps(), 20);
  EXPECT_LT(max_abs_diff(ours, theirs), 1e-7);
  // The parameters moved far more than the tolerance, so the comparison means something.
  EXPECT_GT(max_abs_diff(ours, make_params(1)), 0.1);
  // The moments are libtorch's too.
  for (size_t i = 0; i < ours.size(); ++i) {
    auto& state =
        static_cast<torch::optim::AdamWParamState&>(optimizer_state_of(reference, theirs[i].unsafeGetTensorImpl()));
    EXPECT_LT((adamw.exp_avg()[i] - state.exp_avg()).abs().max().item<double>(), 1e-6);
    EXPECT_LT((adamw.exp_avg_sq()[i] - state.exp_avg_sq()).abs().max().item<double>(), 1e-6);
  }
}

TEST(Optimizer, LrScalesAreLibtorchParameterGroupsWithTheirOwnLr) {
  auto ours = make_params(2);
  auto theirs = clones(ours);
  AdamWOptions options;
  options.weight_decay = 0.1;
  AdamW adamw(ours, options);
  const std::vector<double> scales{1.0, 0.25, 2.0};
  adamw.set_lr_scales(scales);
  const double lr = 2e-2;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (size_t i = 0; i < theirs.size(); ++i) {
    groups.emplace_back(std::vector<torch::Tensor>{theirs[i]},
                        std::make_unique<torch::optim::AdamWOptions>(
                            torch::optim::AdamWOptions(lr * scales[i]).weight_decay(0.1)));
  }
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(lr).weight_decay(0.1));
  torch::manual_seed(8);
  for (int step = 0; step < 10; ++step) {
    set_same_grads(ours, theirs);
    adamw.step(lr);
    reference.step();
  }
  EXPECT_LT(max_abs_diff(ours, theirs), 1e-7);
  // Each parameter moved by its own lr: the first about 4 times as far as the second.
  const auto start = make_params(2);
  const double moved0 = (ours[0] - start[0]).abs().mean().item<double>();
  const double moved1 = (ours[1] - start[1]).abs().mean().item<double>();
  EXPECT_GT(moved0 / moved1, 2.5);
}

TEST(Optimizer, AdafactorLrScaleIsTheSameStepAtTheScaledLr) {
  auto scaled = make_params(3);
  auto plain = clones(scaled);
  Adafactor a(scaled, AdafactorOptions{});
  a.set_lr_scales({0.5, 0.5, 0.5});
  Adafactor b(plain, AdafactorOptions{});
  torch::manual_seed(9);
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < scaled.size(); ++i) {
      const torch::Tensor g = torch::randn(scaled[i].sizes());
      scaled[i].mutable_grad() = g.clone();
      plain[i].mutable_grad() = g.clone();
    }
    a.step(1e-2);
    b.step(0.5e-2);
  }
  EXPECT_EQ(max_abs_diff(scaled, plain), 0.0);
  EXPECT_GT(max_abs_diff(scaled, make_params(3)), 1e-3);
}

TEST(Optimizer, LrScalesOfTheWrongCountOrNotPositiveAreRefused) {
  AdamW adamw(make_params(4), AdamWOptions{});
  EXPECT_THROW(adamw.set_lr_scales({1.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(adamw.set_lr_scales({1.0, 0.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(adamw.set_lr_scales({1.0, 1.0, std::nan("")}), std::invalid_argument);
  EXPECT_NO_THROW(adamw.set_lr_scales({1.0, 0.1, 3.0}));
}

TEST(Optimizer, AdamWFirstStepMovesEachWeightByLearningRate) {
  // With bias correction the first update is lr * g / (|g| + eps'), i.e. ±lr per element.
  torch::Tensor p = torch::tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
  AdamW adamw({p}, AdamWOptions{});
  p.mutable_grad() = torch::tensor({0.5f, -4.0f, 1e-3f});
  adamw.step(0.1);
  EXPECT_NEAR(p[0].item<double>(), 0.9, 1e-5);
  EXPECT_NEAR(p[1].item<double>(), -1.9, 1e-5);
  EXPECT_NEAR(p[2].item<double>(), 2.9, 1e-4);
}

TEST(Optimizer, AdamWSkipsParametersWithoutGradAndZeroGradUndefines) {
  torch::Tensor a = torch::ones({2}).requires_grad_();
  torch::Tensor b = torch::ones({2}).requires_grad_();
  AdamW adamw({a, b}, AdamWOptions{});
  a.mutable_grad() = torch::ones({2});
  adamw.step(0.5);
  EXPECT_NEAR(a[0].item<double>(), 0.5, 1e-6);
  EXPECT_EQ(b[0].item<double>(), 1.0);
  adamw.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

std::vector<torch::Tensor> params_with_grads(uint64_t seed, double scale) {
  auto params = make_params(seed);
  torch::manual_seed(seed + 100);
  for (auto& p : params) p.mutable_grad() = scale * torch::randn(p.sizes());
  return params;
}

TEST(Optimizer, ClipGradNormMatchesLibtorch) {
  for (double max_norm : {0.5, 1e3}) {
    auto ours = params_with_grads(3, 2.0);
    auto theirs = params_with_grads(3, 2.0);
    const double norm = clip_grad_norm(ours, max_norm);
    const double expected = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    EXPECT_NEAR(norm, expected, 1e-5 * expected) << "max_norm " << max_norm;
    double diff = 0;
    for (size_t i = 0; i < ours.size(); ++i)
      diff = std::max(diff, (ours[i].grad() - theirs[i].grad()).abs().max().item<double>());
    EXPECT_LT(diff, 1e-7) << "max_norm " << max_norm;
  }
  // The clipped norm is max_norm, computed here from the definition.
  auto params = params_with_grads(3, 2.0);
  clip_grad_norm(params, 0.5);
  double sq = 0;
  for (const auto& p : params) sq += p.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(sq), 0.5, 1e-5);
}

TEST(Optimizer, ClipGradNormWithNonPositiveMaxOnlyMeasures) {
  auto params = params_with_grads(4, 1.0);
  const torch::Tensor before = params[0].grad().clone();
  double sq = 0;
  for (const auto& p : params) sq += p.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(clip_grad_norm(params, 0.0), std::sqrt(sq), 1e-4);
  EXPECT_TRUE(torch::equal(params[0].grad(), before));
}

TEST(Optimizer, WarmupThenCosineDecayFollowsTransformersFormula) {
  LrSchedule s;
  s.peak = 2e-4;
  s.warmup_steps = 10;
  s.total_steps = 110;
  s.decay = LrDecay::cosine;
  const double pi = std::acos(-1.0);
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(5), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(10), 2e-4);
  // 25 of 100 decay steps: 0.5 (1 + cos(pi/4)).
  EXPECT_NEAR(s.at(35), 2e-4 * 0.5 * (1 + std::cos(pi / 4)), 1e-15);
  EXPECT_NEAR(s.at(60), 1e-4, 1e-15);
  EXPECT_NEAR(s.at(110), 0.0, 1e-15);
}

TEST(Optimizer, WarmupThenLinearDecayFollowsTransformersFormula) {
  LrSchedule s;
  s.peak = 1e-3;
  s.warmup_steps = 4;
  s.total_steps = 24;
  s.decay = LrDecay::linear;
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(1), 2.5e-4);
  EXPECT_DOUBLE_EQ(s.at(4), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(9), 7.5e-4);  // 15 of 20 decay steps left
  EXPECT_DOUBLE_EQ(s.at(24), 0.0);
  EXPECT_DOUBLE_EQ(s.at(30), 0.0);  // never negative
}

TEST(Optimizer, ConstantScheduleAndNoWarmup) {
  LrSchedule s;
  s.peak = 3e-4;
  s.warmup_steps = 2;
  s.total_steps = 5;
  s.decay = LrDecay::constant;
  EXPECT_DOUBLE_EQ(s.at(1), 1.5e-4);
  EXPECT_DOUBLE_EQ(s.at(2), 3e-4);
  EXPECT_DOUBLE_EQ(s.at(100), 3e-4);
  s.warmup_steps = 0;
  s.decay = LrDecay::cosine;
  EXPECT_DOUBLE_EQ(s.at(0), 3e-4);  // no warm-up: the first step has the peak
}

TEST(Optimizer, DecayNamesParseAndUnknownIsRefused) {
  EXPECT_EQ(lr_decay_parse("cosine"), LrDecay::cosine);
  EXPECT_EQ(lr_decay_parse("linear"), LrDecay::linear);
  EXPECT_EQ(lr_decay_parse("constant"), LrDecay::constant);
  try {
    lr_decay_parse("exponential");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("exponential"), std::string::npos);
  }
}

}  // namespace
}  // namespace kmoe
