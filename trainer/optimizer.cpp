// See optimizer.h. The arithmetic follows torch.optim.AdamW (single-tensor path) and
// torch.nn.utils.clip_grad_norm_ operation for operation, in the parameters' dtype, so a
// kmoe run and a PyTorch run of the same steps agree to rounding; the schedule follows
// transformers' get_{constant,linear,cosine}_schedule_with_warmup.
#include "trainer/optimizer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace kmoe {

Optimizer::Optimizer(std::vector<at::Tensor> params) : params_(std::move(params)), lr_scales_(params_.size(), 1.0) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i];
    if (!p.defined() || !p.is_floating_point())
      throw std::invalid_argument("optimizer: parameter " + std::to_string(i) +
                                  " is not a defined floating-point tensor");
  }
}

void Optimizer::set_lr_scales(std::vector<double> scales) {
  if (scales.size() != params_.size())
    throw std::invalid_argument("optimizer: " + std::to_string(scales.size()) + " learning-rate scales for " +
                                std::to_string(params_.size()) + " parameters");
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!(scales[i] > 0) || !std::isfinite(scales[i]))
      throw std::invalid_argument("optimizer: the learning-rate scale of parameter " + std::to_string(i) +
                                  " is not positive and finite");
  }
  lr_scales_ = std::move(scales);
}

void Optimizer::zero_grad() {
  for (at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
}

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options) : Optimizer(std::move(params)), options_(options) {
  for (const at::Tensor& p : params_) {
    a_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    b_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double t = static_cast<double>(steps_);
  const double bias_correction1 = 1 - std::pow(options_.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(options_.beta2, t));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    const double lr_i = lr * lr_scales_[i];  // exactly lr at scale 1
    const double step_size = lr_i / bias_correction1;
    if (options_.weight_decay != 0) p.mul_(1 - lr_i * options_.weight_decay);
    a_[i].mul_(options_.beta1).add_(grad, 1 - options_.beta1);
    b_[i].mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
    const at::Tensor denom = (b_[i].sqrt() / bias_correction2_sqrt).add_(options_.eps);
    p.addcdiv_(a_[i], denom, -step_size);
  }
}

namespace {

at::Tensor adafactor_rms(const at::Tensor& t) {
  return t.norm(2) / std::sqrt(static_cast<double>(t.numel()));
}

}  // namespace

Adafactor::Adafactor(std::vector<at::Tensor> params, AdafactorOptions options)
    : Optimizer(std::move(params)), options_(options) {
  for (const at::Tensor& p : params_) {
    if (p.dim() >= 2) {
      std::vector<int64_t> col = p.sizes().vec();
      col.erase(col.end() - 2);
      a_.push_back(at::zeros(p.sizes().slice(0, p.dim() - 1), p.options()));
      b_.push_back(at::zeros(col, p.options()));
    } else {
      a_.push_back(at::zeros({1}, p.options()));  // unused: a placeholder, so every state is a tensor
      b_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    }
  }
}

// Operation for operation as transformers.optimization.Adafactor.step (float32 parameters).
void Adafactor::step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double beta2t = 1.0 - std::pow(static_cast<double>(steps_), options_.decay_rate);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    const double scale = options_.scale_parameter ? std::max(options_.eps2, adafactor_rms(p).item<double>()) : 1.0;
    const double alpha = scale * lr * lr_scales_[i];
    at::Tensor update = grad * grad + options_.eps1;
    if (p.dim() >= 2) {
      at::Tensor& row = a_[i];
      at::Tensor& col = b_[i];
      row.mul_(beta2t).add_(update.mean(-1), 1.0 - beta2t);
      col.mul_(beta2t).add_(update.mean(-2), 1.0 - beta2t);
      const at::Tensor r_factor = (row / row.mean(-1, /*keepdim=*/true)).rsqrt_().unsqueeze(-1);
      const at::Tensor c_factor = col.unsqueeze(-2).rsqrt();
      update = at::mul(r_factor, c_factor);
      update.mul_(grad);
    } else {
      at::Tensor& v = b_[i];
      v.mul_(beta2t).add_(update, 1.0 - beta2t);
      update = v.rsqrt().mul_(grad);
    }
    update.div_((adafactor_rms(update) / options_.clip_threshold).clamp_(1.0));
    update.mul_(alpha);
    if (options_.weight_decay != 0) p.add_(p, -options_.weight_decay * alpha);
    p.add_(-update);
  }
}

std::unique_ptr<Optimizer> optimizer_make(const std::string& name, std::vector<at::Tensor> params,
                                          const AdamWOptions& adamw) {
  if (name == "adamw") return std::make_unique<AdamW>(std::move(params), adamw);
  if (name == "adafactor") {
    AdafactorOptions o;
    o.weight_decay = adamw.weight_decay;
    return std::make_unique<Adafactor>(std::move(params), o);
  }
  throw std::invalid_argument("unknown optimizer '" + name + "' (expected adamw or adafactor)");
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
      return peak * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 2.0 * 0.5 * progress)));
    }
  }
  throw std::logic_error("LrSchedule::at: unknown decay");
}

}  // namespace kmoe
