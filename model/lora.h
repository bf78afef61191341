// LoRA adapters over a LLaMA-family base: delta = scale · (x Aᵀ) Bᵀ added to a linear layer's
// output, as PEFT computes it. Several adapters stay resident over one base model in a
// LoraSet (the LinearHook the decoder calls); switching is a pointer change, never a copy of
// the base. Merging writes scale · B A into the base weights in place and keeps a pristine
// copy of each touched weight, so restoring is a copy back (bit-exact), not a subtraction.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "model/config.h"
#include "model/linear_hook.h"

namespace kmoe {

struct LoraConfig {
  int64_t r = 8;
  double lora_alpha = 8.0;
  std::vector<LinearModule> target_modules;  // modules adapted in every targeted layer
  std::vector<int64_t> layers_to_transform;  // empty: every layer of the base
  bool use_rslora = false;                   // scale = alpha / sqrt(r) instead of alpha / r
  bool fan_in_fan_out = false;               // base stores W as [in, out]; never so for LLaMA (PEFT resets it)
  double lora_dropout = 0.0;                 // applied to x only while the LoraSet is training
  std::string base_model_name_or_path;       // carried for PEFT's adapter_config.json
  std::string task_type = "CAUSAL_LM";
};

double lora_scale(const LoraConfig& config);
// Whether `config` adapts (layer, module).
bool lora_targets(const LoraConfig& config, int64_t layer, LinearModule module);

// HF's module path of a linear layer: "model.layers.3.self_attn.q_proj", "model.layers.0.mlp.down_proj".
std::string lora_module_path(int64_t layer, LinearModule module);
// in_features, out_features of a linear layer of the base described by `base`.
std::pair<int64_t, int64_t> linear_features(const ModelConfig& base, LinearModule module);

struct LoraWeights {
  at::Tensor A;  // [r, in_features]
  at::Tensor B;  // [out_features, r]
};

using LoraKey = std::pair<int64_t, LinearModule>;  // (layer, module)

struct LoraAdapter {
  std::string name;
  LoraConfig config;
  std::map<LoraKey, LoraWeights> weights;  // exactly the targeted (layer, module) pairs
};

// A fresh adapter for every targeted (layer, module) of `base`: A ~ kaiming-uniform(a=√5) as
// PEFT initialises it; B zero unless b_std > 0 (then B ~ N(0, b_std²), for tests and parity).
LoraAdapter lora_adapter_init(const std::string& name, const LoraConfig& config, const ModelConfig& base,
                              double b_std = 0.0);
// Checks the adapter against the base: targeted layers inside the base, one A/B pair for
// each targeted (layer, module) and none other, A [r, in], B [out, r]. Throws
// std::invalid_argument naming the adapter and the tensor.
void lora_adapter_validate(const LoraAdapter& adapter, const ModelConfig& base);
// Makes every A and B a leaf that does (or does not) require grad.
void lora_adapter_requires_grad(LoraAdapter& adapter, bool requires_grad);
// Moves A and B to the base model's device and dtype (loaders give float32 on the CPU); they
// stay leaves with the same requires_grad.
void lora_adapter_to(LoraAdapter& adapter, c10::Device device, c10::ScalarType dtype);

// The base model's weight of one linear layer, W [out_features, in_features], sharing the
// model's storage so that in-place edits change the model.
using LinearWeightFn = std::function<at::Tensor(int64_t layer, LinearModule module)>;

class LoraSet : public LinearHook {
 public:
  explicit LoraSet(const ModelConfig& base) : base_(base) {}

  // Validates against the base (see lora_adapter_validate) and keeps the adapter under its
  // name; a name already present is an error.
  void add(LoraAdapter adapter);
  void remove(const std::string& name);
  bool has(const std::string& name) const { return adapters_.count(name) > 0; }
  std::vector<std::string> names() const;
  LoraAdapter& adapter(const std::string& name);  // throws naming the adapter if absent
  const LoraAdapter& adapter(const std::string& name) const;

  // Which adapter delta() applies; "" for none. Not while merged.
  void activate(const std::string& name);
  void deactivate() { activate(""); }
  const std::string& active() const { return active_; }

  // Dropout on x (the adapter's lora_dropout) only while training.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

  // W += scale · B A for each (layer, module) of the active adapter, in place through
  // `weight`; delta() then adds nothing until restore().
  void merge(const LinearWeightFn& weight);
  // Copies the pristine weights kept by merge() back into the base: bit-exact.
  void restore();
  bool merged() const { return !pristine_.empty(); }

  // x [batch, seq, in] -> scale · dropout(x) Aᵀ Bᵀ [batch, seq, out] in x's dtype, or an
  // undefined tensor when no adapter is active, it is merged, or it skips (layer, module).
  at::Tensor delta(int64_t layer, LinearModule module, const at::Tensor& x) const override;

 private:
  ModelConfig base_;
  std::map<std::string, LoraAdapter> adapters_;
  std::string active_;
  bool training_ = false;
  LinearWeightFn merged_weight_;
  std::map<LoraKey, at::Tensor> pristine_;  // copies of the base weights touched by merge()
};

}  // namespace kmoe
