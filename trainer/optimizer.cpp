// See optimizer.h. The arithmetic follows torch.optim.AdamW (single-tensor path) and
// torch.nn.utils.clip_grad_norm_ operation for operation, in the parameters' dtype, so a
// kmoe run and a PyTorch run of the same steps agree to rounding; the schedule follows
// transformers' get_{constant,linear,cosine}_schedule_with_warmup.
#include "trainer/optimizer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kmoe {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options) : params_(std::move(params)), options_(options) {
  exp_avg_.reserve(params_.size());
  exp_avg_sq_.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i];
    if (!p.defined() || !p.is_floating_point()) {
      throw std::invalid_argument("AdamW: parameter " + std::to_string(i) + " is not a defined floating-point tensor");
    }
    exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double t = static_cast<double>(steps_);
  const double bias_correction1 = 1 - std::pow(options_.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(options_.beta2, t));
  const double step_size = lr / bias_correction1;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    if (options_.weight_decay != 0) p.mul_(1 - lr * options_.weight_decay);
    exp_avg_[i].mul_(options_.beta1).add_(grad, 1 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
    const at::Tensor denom = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(options_.eps);
    p.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

void AdamW::zero_grad() {
  for (at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  std::vector<at::Tensor> norms;
  norms.reserve(grads.size());
  for (const at::Tensor& g : grads) norms.push_back(g.norm(2));
  const at::Tensor total = norms.size() == 1 ? norms[0] : at::stack(norms).norm(2);
  if (max_norm > 0) {
    const at::Tensor clip_coef = at::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
    for (at::Tensor& g : grads) g.mul_(clip_coef);
  }
  return total.item<double>();
}

LrDecay lr_decay_parse(const std::string& name) {
  if (name == "constant") return LrDecay::constant;
  if (name == "linear") return LrDecay::linear;
  if (name == "cosine") return LrDecay::cosine;
  throw std::invalid_argument("unknown learning-rate decay '" + name + "' (expected constant, linear or cosine)");
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps)
    return peak * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double done = static_cast<double>(step - warmup_steps);
  switch (decay) {
    case LrDecay::constant:
      return peak;
    case LrDecay::linear:
      return peak * std::max(0.0, (static_cast<double>(total_steps - step)) / decay_steps);
    case LrDecay::cosine: {
      // num_cycles = 0.5: half a cosine from 1 to 0 over the decay steps.
      const double progress = done / decay_steps;
      return peak * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 2.0 * 0.5 * progress)));
    }
  }
  throw std::logic_error("LrSchedule::at: unknown decay");
}

}  // namespace kmoe
