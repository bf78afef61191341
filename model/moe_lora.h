// The mixture of LoRA experts (METHOD.md §1.3): every adapted linear layer keeps N LoRA
// experts, initialised from N adapters, and a router Linear(in_features, N, bias=false).
// Per token: softmax over the router logits, keep the top-k, renormalise over those k;
//   y = W x + sum over kept experts e of g_e · scale_e · B_e A_e x.
// Optional Switch-style load-balancing loss: per adapted module, N · sum_e f_e · P_e, where
// f_e is the fraction of (token, slot) assignments that went to e and P_e the mean router
// probability of e over the tokens; summed over modules, times the coefficient.
// Router load is the routing weight g_e each expert receives, not a count of kept slots:
// with N = k (the paper's N = 2, k = 2) every token keeps every expert and counts say
// nothing, while the weights show where the router sends it. For k = 1 the two agree.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/linear_hook.h"
#include "model/lora.h"

namespace kmoe {

struct MoeConfig {
  int64_t top_k = 2;            // clamped to the number of experts
  double aux_loss_coef = 0.0;   // 0 as in the paper
  bool train_experts = true;    // false: only the routers train
  double expert_dropout = 0.0;  // lora_dropout on x inside each expert while training
};

// "layers.3.q_proj": a key's name in parameter names and in moe.h5.
std::string moe_key_name(const LoraKey& key);
// Checks that `experts` can form a mixture over `base`: each valid for the base
// (lora_adapter_validate), all with the same r, target modules and layers. Throws
// std::invalid_argument naming both adapters and what differs.
void moe_experts_validate(const std::vector<LoraAdapter>& experts, const ModelConfig& base);

class MoeLora : public LinearHook {
 public:
  // The experts must share r, target modules and layers (their alpha and rslora may
  // differ: each keeps its own scale). Throws std::invalid_argument naming the adapters
  // and what differs ("expert 'b' has r = 8, expert 'a' has r = 16"). Routers start as
  // nn.Linear does (kaiming-uniform, a = √5) from a CPU generator seeded with `seed`.
  MoeLora(const ModelConfig& base, std::vector<LoraAdapter> experts, MoeConfig config, uint64_t seed);
  // From saved parts (see moe_file.h): routers [N, in] per key, in keys() order.
  MoeLora(const ModelConfig& base, std::vector<LoraAdapter> experts, MoeConfig config, std::vector<at::Tensor> routers);

  // x [batch, seq, in] -> [batch, seq, out] in x's dtype; undefined for a module without
  // experts. Adds to the router statistics (and the aux loss when its coefficient is not 0).
  // With expert_dropout while training, one dropout mask on x is shared by all experts.
  at::Tensor delta(int64_t layer, LinearModule module, const at::Tensor& x) const override;

  int64_t expert_count() const;
  const MoeConfig& config() const { return config_; }
  const std::vector<LoraKey>& keys() const { return keys_; }  // adapted (layer, module), sorted
  const std::vector<LoraAdapter>& experts() const { return experts_; }
  const std::vector<at::Tensor>& routers() const { return routers_; }  // [N, in] per key

  // Tensors the optimizer updates, with stable names ("layers.3.q_proj.router",
  // "layers.3.q_proj.experts.1.lora_A"): the routers, plus every expert A/B when
  // config.train_experts. Makes them leaves that require grad; the rest do not.
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters();
  // Experts to (device, dtype); routers to device and kept float32 (routing is computed in
  // float32). Call before trainable_parameters(): the tensors it returns are not moved.
  void to(c10::Device device, c10::ScalarType dtype);

  void set_training(bool training) { training_ = training; }

  // Which tokens are real for router statistics and the aux loss, and which group (e.g. the
  // training file) each comes from: [batch, seq] integers, 0 = pad, g + 1 = a token of group
  // g; undefined = every token, all of group 0. Set before each forward.
  void set_token_mask(const at::Tensor& mask);
  // Router load since the last reset: [keys, N] float64 on the CPU, the sum over real tokens
  // of the renormalised gate g_e (0 for experts outside the top-k), so each token adds 1 to
  // a key's row. Detached.
  at::Tensor router_load() const;
  // The same per group: [groups, keys, N], groups = the highest mask value given to
  // set_token_mask so far (at least 1); sums over groups to router_load().
  at::Tensor router_load_by_group() const;
  // The aux loss accumulated by the forwards since the last reset, times the coefficient;
  // a zero scalar when the coefficient is 0. Carries the graph.
  at::Tensor aux_loss() const;
  void reset_statistics();  // zeroes router load (keeping its groups) and the aux loss

 private:
  void init();  // validates, clamps top_k, fills keys_, key_index_ and scales_

  ModelConfig base_;
  MoeConfig config_;
  std::vector<LoraAdapter> experts_;
  std::vector<LoraKey> keys_;
  std::map<LoraKey, int64_t> key_index_;  // position in keys_
  std::vector<at::Tensor> routers_;
  at::Tensor scales_;  // [N] float32: each expert's lora_scale
  bool training_ = false;
  at::Tensor token_mask_;
  mutable at::Tensor router_load_;  // [groups, keys, N] float64 on the routers' device
  mutable at::Tensor aux_loss_;     // unscaled sum since the reset; undefined before a forward
};

}  // namespace kmoe
