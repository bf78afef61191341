// AdamW (torch.optim.AdamW's update, decoupled weight decay, bias correction), gradient
// clipping by global norm (torch.nn.utils.clip_grad_norm_) and the learning-rate schedule
// (linear warm-up, then constant, linear or cosine decay as transformers' schedulers
// compute it). The optimizer state is plain tensors so checkpoints can store and restore
// it exactly.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kmoe {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);

  // One update of every parameter that has a grad, with learning rate `lr`:
  //   p *= 1 - lr·wd;  m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;
  //   p -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)          (t = steps() after ++)
  void step(double lr);
  void zero_grad();  // grads to undefined, as set_to_none=True

  int64_t steps() const { return steps_; }
  const std::vector<at::Tensor>& params() const { return params_; }
  // First and second moments, one per parameter (same shape); for checkpoints.
  std::vector<at::Tensor>& exp_avg() { return exp_avg_; }
  std::vector<at::Tensor>& exp_avg_sq() { return exp_avg_sq_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  std::vector<at::Tensor> params_;
  AdamWOptions options_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  int64_t steps_ = 0;
};

// Scales every grad so that their global L2 norm is at most max_norm (no-op when
// max_norm <= 0) and returns the norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

enum class LrDecay { constant, linear, cosine };
LrDecay lr_decay_parse(const std::string& name);  // "constant" | "linear" | "cosine"; throws otherwise

struct LrSchedule {
  double peak = 5e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  LrDecay decay = LrDecay::cosine;
  // The learning rate of 0-based optimizer step `step`: peak·step/warmup during warm-up,
  // then the decay from peak to 0 at total_steps (transformers' get_*_schedule_with_warmup).
  double at(int64_t step) const;
};

}  // namespace kmoe
