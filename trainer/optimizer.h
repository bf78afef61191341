// AdamW (torch.optim.AdamW's update, decoupled weight decay, bias correction), Adafactor
// (transformers.optimization.Adafactor with a given learning rate: ProMoT's optimizer), gradient
// clipping by global norm (torch.nn.utils.clip_grad_norm_) and the learning-rate schedule
// (linear warm-up, then constant, linear or cosine decay as transformers' schedulers
// compute it). The optimizer state is plain tensors so checkpoints can store and restore
// it exactly.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kmoe {

// What the training loop steps. Every parameter has two state tensors, which checkpoints
// store (as exp_avg and exp_avg_sq): AdamW's first and second moments; Adafactor's factored
// second moment (row, col) for a parameter of two or more dimensions, or (a one-element
// placeholder, the second moment) for a vector.
class Optimizer {
 public:
  explicit Optimizer(std::vector<at::Tensor> params);
  virtual ~Optimizer() = default;
  // One update of every parameter that has a grad, with learning rate `lr` times the
  // parameter's scale (set_lr_scales; 1 unless set).
  virtual void step(double lr) = 0;
  // One positive factor per parameter, in params() order: parameter i steps at lr × scales[i]
  // (weight decay included), as a torch parameter group with its own lr. Throws
  // std::invalid_argument for a wrong count or a factor that is not positive and finite.
  void set_lr_scales(std::vector<double> scales);
  void zero_grad();  // grads to undefined, as set_to_none=True
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  const std::vector<at::Tensor>& params() const { return params_; }
  std::vector<at::Tensor>& state_a() { return a_; }
  std::vector<at::Tensor>& state_b() { return b_; }

 protected:
  std::vector<at::Tensor> params_;
  std::vector<double> lr_scales_;  // one per parameter
  std::vector<at::Tensor> a_, b_;
  int64_t steps_ = 0;
};

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);

  //   p *= 1 - lr·wd;  m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;
  //   p -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)          (t = steps() after ++)
  void step(double lr) override;

  // First and second moments, one per parameter (same shape).
  std::vector<at::Tensor>& exp_avg() { return a_; }
  std::vector<at::Tensor>& exp_avg_sq() { return b_; }

 private:
  AdamWOptions options_;
};

struct AdafactorOptions {
  double eps1 = 1e-30;          // added to g²
  double eps2 = 1e-3;           // the least parameter scale
  double clip_threshold = 1.0;  // the update's RMS is clipped to it
  double decay_rate = -0.8;     // β2 at step t = 1 - t^decay_rate
  double weight_decay = 0.0;
  bool scale_parameter = true;  // the step is lr × max(eps2, RMS(p))
};

// transformers' Adafactor with relative_step=False and beta1=None (no first moment), the
// learning rate given each step (the schedule's):
//   v = β2t v + (1-β2t)(g² + eps1), factored over the last two dimensions for a matrix
//   (row and column means: v ≈ row ⊗ col / mean(row));  u = g / sqrt(v);
//   u /= max(1, RMS(u) / clip);  α = lr · max(eps2, RMS(p)) (scale_parameter);
//   p -= α·wd·p;  p -= α·u
class Adafactor final : public Optimizer {
 public:
  Adafactor(std::vector<at::Tensor> params, AdafactorOptions options);
  void step(double lr) override;

 private:
  AdafactorOptions options_;
};

// "adamw" | "adafactor" (weight decay from adamw.weight_decay for both); throws otherwise.
std::unique_ptr<Optimizer> optimizer_make(const std::string& name, std::vector<at::Tensor> params,
                                          const AdamWOptions& adamw);

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
