// See moe_lora.h. delta() runs every expert densely: x is multiplied once by all experts'
// stacked A [N·r, in], each expert's r-slice of that product is scaled by its gate (zero for
// experts outside the top-k) and scale, and one matmul with the stacked B [out, N·r] sums
// the experts. This is exact, and for the small N and r of a LoRA mixture two large matmuls
// beat gathering the kept experts token by token. The stacks are rebuilt in every call
// (a cat of N small tensors) so the optimizer's in-place updates and autograd reach the
// experts' own A and B. Routing is computed in float32 whatever the experts' dtype.
#include "model/moe_lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "model/shape_text.h"

namespace kmoe {

namespace {

template <typename T, typename F>
std::string list_str(const std::set<T>& values, F&& to_string) {
  std::string s = "[";
  for (const T& v : values) s.append(s.size() > 1 ? ", " : "").append(to_string(v));
  return s + "]";
}

std::set<LinearModule> expert_targets(const LoraAdapter& a) {
  return {a.config.target_modules.begin(), a.config.target_modules.end()};
}

std::set<int64_t> expert_layers(const LoraAdapter& a) {
  std::set<int64_t> layers;
  for (const auto& [key, w] : a.weights) layers.insert(key.first);
  return layers;
}

std::string mismatch(const LoraAdapter& a, const LoraAdapter& b, const std::string& what_a, const std::string& what_b) {
  return "MoE experts do not fit together: expert '" + b.name + "' " + what_b + ", expert '" + a.name + "' " + what_a;
}

}  // namespace

std::string moe_key_name(const LoraKey& key) {
  return "layers." + std::to_string(key.first) + "." + linear_module_name(key.second);
}

void moe_experts_validate(const std::vector<LoraAdapter>& experts, const ModelConfig& base) {
  if (experts.empty()) throw std::invalid_argument("MoE: needs at least one expert");
  for (const auto& e : experts) lora_adapter_validate(e, base);
  const LoraAdapter& first = experts.front();
  const auto module_str = [](LinearModule m) { return std::string(linear_module_name(m)); };
  const auto layer_str = [](int64_t l) { return std::to_string(l); };
  for (size_t i = 1; i < experts.size(); ++i) {
    const LoraAdapter& e = experts[i];
    if (e.config.r != first.config.r)
      throw std::invalid_argument(
          mismatch(first, e, "has r = " + std::to_string(first.config.r), "has r = " + std::to_string(e.config.r)));
    if (expert_targets(e) != expert_targets(first))
      throw std::invalid_argument(mismatch(first, e, "targets " + list_str(expert_targets(first), module_str),
                                           "targets " + list_str(expert_targets(e), module_str)));
    if (expert_layers(e) != expert_layers(first))
      throw std::invalid_argument(mismatch(first, e, "adapts layers " + list_str(expert_layers(first), layer_str),
                                           "adapts layers " + list_str(expert_layers(e), layer_str)));
  }
}

MoeLora::MoeLora(const ModelConfig& base, std::vector<LoraAdapter> experts, MoeConfig config, uint64_t seed)
    : base_(base), config_(config), experts_(std::move(experts)) {
  init();
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (const LoraKey& key : keys_) {
    const int64_t in = linear_features(base_, key.second).first;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform_(a=√5) on [N, in]
    routers_.push_back(torch::empty({expert_count(), in}, torch::kFloat32).uniform_(-bound, bound, gen));
  }
  reset_statistics();
}

MoeLora::MoeLora(const ModelConfig& base, std::vector<LoraAdapter> experts, MoeConfig config,
                 std::vector<at::Tensor> routers)
    : base_(base), config_(config), experts_(std::move(experts)) {
  init();
  if (routers.size() != keys_.size())
    throw std::invalid_argument("MoE: " + std::to_string(routers.size()) + " routers given for " +
                                std::to_string(keys_.size()) + " adapted modules");
  for (size_t k = 0; k < keys_.size(); ++k) {
    const int64_t in = linear_features(base_, keys_[k].second).first;
    const at::Tensor& r = routers[k];
    if (!r.defined() || r.dim() != 2 || r.size(0) != expert_count() || r.size(1) != in || !r.is_floating_point())
      throw std::invalid_argument("MoE: router of " + moe_key_name(keys_[k]) + " has shape " +
                                  (r.defined() ? shape_text(r) : std::string("(none)")) + ", expected [" +
                                  std::to_string(expert_count()) + ", " + std::to_string(in) + "] floats");
    routers_.push_back(r.detach().to(torch::kFloat32).contiguous());
  }
  reset_statistics();
}

void MoeLora::init() {
  moe_experts_validate(experts_, base_);
  if (config_.top_k <= 0) throw std::invalid_argument("MoE: top_k must be positive");
  config_.top_k = std::min<int64_t>(config_.top_k, expert_count());
  if (config_.aux_loss_coef < 0) throw std::invalid_argument("MoE: aux_loss_coef must be >= 0");
  if (config_.expert_dropout < 0 || config_.expert_dropout >= 1)
    throw std::invalid_argument("MoE: expert_dropout must be in [0, 1)");
  for (const auto& [key, w] : experts_.front().weights) {
    key_index_.emplace(key, static_cast<int64_t>(keys_.size()));
    keys_.push_back(key);
  }
  std::vector<float> scales;
  for (const auto& e : experts_) scales.push_back(static_cast<float>(lora_scale(e.config)));
  scales_ = torch::tensor(scales, torch::kFloat32);
}

int64_t MoeLora::expert_count() const {
  return static_cast<int64_t>(experts_.size());
}

at::Tensor MoeLora::delta(int64_t layer, LinearModule module, const at::Tensor& x) const {
  const auto it = key_index_.find({layer, module});
  if (it == key_index_.end()) return {};
  const int64_t k = it->second, n = expert_count(), r = experts_.front().config.r;
  const int64_t in = x.size(-1), m = x.numel() / in;
  const at::Tensor& router = routers_[k];

  // Routing [m, n] in float32: softmax, top-k, renormalised over the kept experts.
  const at::Tensor x2 = x.reshape({m, in});
  const at::Tensor probs = torch::softmax(torch::matmul(x2.to(router.scalar_type()), router.t()), -1);
  const auto [top_p, top_idx] = probs.topk(config_.top_k, -1);
  const at::Tensor gates = torch::zeros_like(probs).scatter(-1, top_idx, top_p / top_p.sum(-1, true));

  std::vector<at::Tensor> as, bs;
  for (const auto& e : experts_) {
    const LoraWeights& w = e.weights.at(keys_[k]);
    as.push_back(w.A);
    bs.push_back(w.B);
  }
  const at::Tensor a = torch::cat(as, 0);  // [n·r, in]
  const at::Tensor b = torch::cat(bs, 1);  // [out, n·r]
  at::Tensor h = x2.to(a.scalar_type());
  if (training_ && config_.expert_dropout > 0) h = torch::dropout(h, config_.expert_dropout, /*train=*/true);
  h = torch::matmul(h, a.t()).view({m, n, r});
  const at::Tensor g = (gates * scales_.to(gates.device())).to(h.scalar_type());
  at::Tensor out = torch::matmul((h * g.unsqueeze(-1)).view({m, n * r}), b.t());
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = out.size(-1);

  // Statistics over real tokens: routing weight per group and expert, and the Switch loss
  // terms (which count kept slots).
  at::Tensor group;  // [m] int64: 0 = pad, g + 1 = group g
  if (token_mask_.defined()) {
    if (token_mask_.numel() != m)
      throw std::invalid_argument("MoE: the token mask has shape " + shape_text(token_mask_) + " but " +
                                  moe_key_name(keys_[k]) + " gets " + std::to_string(m) + " tokens");
    group = token_mask_.reshape({m}).to(probs.device(), torch::kInt64);
  }
  const at::Tensor real = group.defined() ? group.gt(0).to(torch::kFloat32) : at::Tensor();  // [m] 1 = token
  at::Tensor kept;  // [m, n] 0/1 over real tokens
  {
    torch::NoGradGuard no_grad;
    const int64_t groups = router_load_.size(0);
    const at::Tensor ids =
        torch::arange(1, groups + 1, group.defined() ? group.options() : probs.options().dtype(torch::kInt64));
    const at::Tensor member = group.defined() ? group.unsqueeze(-1).eq(ids).to(torch::kFloat64)  // [m, groups]
                                              : torch::ones({m, 1}, probs.options().dtype(torch::kFloat64));
    router_load_.select(1, k).add_(torch::matmul(member.t(), gates.detach().to(torch::kFloat64)));
    kept = torch::zeros_like(probs).scatter_(-1, top_idx, 1.0);
    if (real.defined()) kept = kept * real.unsqueeze(-1);
  }
  if (config_.aux_loss_coef != 0) {
    const at::Tensor tokens = real.defined() ? real.sum().clamp_min(1) : torch::full({}, double(m), probs.options());
    const at::Tensor f = kept.sum(0) / (tokens * static_cast<double>(config_.top_k));
    const at::Tensor p = (real.defined() ? probs * real.unsqueeze(-1) : probs).sum(0) / tokens;
    const at::Tensor term = (f * p).sum() * static_cast<double>(n);
    aux_loss_ = aux_loss_.defined() ? aux_loss_ + term : term;
  }
  return out.view(out_shape).to(x.scalar_type());
}

std::vector<std::pair<std::string, at::Tensor>> MoeLora::trainable_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t k = 0; k < keys_.size(); ++k) {
    const std::string prefix = moe_key_name(keys_[k]);
    routers_[k] = routers_[k].detach().requires_grad_(true);
    out.emplace_back(prefix + ".router", routers_[k]);
    for (size_t e = 0; e < experts_.size(); ++e) {
      LoraWeights& w = experts_[e].weights.at(keys_[k]);
      w.A = w.A.detach().requires_grad_(config_.train_experts);
      w.B = w.B.detach().requires_grad_(config_.train_experts);
      if (!config_.train_experts) continue;
      const std::string expert = prefix + ".experts." + std::to_string(e);
      out.emplace_back(expert + ".lora_A", w.A);
      out.emplace_back(expert + ".lora_B", w.B);
    }
  }
  return out;
}

void MoeLora::to(c10::Device device, c10::ScalarType dtype) {
  for (auto& e : experts_) lora_adapter_to(e, device, dtype);
  for (auto& r : routers_) r = r.detach().to(device, torch::kFloat32).requires_grad_(r.requires_grad());
  scales_ = scales_.to(device);
  router_load_ = router_load_.to(device);
  aux_loss_ = at::Tensor();
}

void MoeLora::set_token_mask(const at::Tensor& mask) {
  token_mask_ = mask;
  const int64_t groups = mask.defined() && mask.numel() > 0 ? std::max<int64_t>(1, mask.max().item<int64_t>()) : 1;
  if (groups > router_load_.size(0)) {
    at::Tensor grown = torch::zeros({groups, router_load_.size(1), router_load_.size(2)}, router_load_.options());
    grown.narrow(0, 0, router_load_.size(0)).copy_(router_load_);
    router_load_ = grown;
  }
}

at::Tensor MoeLora::router_load() const {
  return router_load_.sum(0).to(torch::kCPU);
}

at::Tensor MoeLora::router_load_by_group() const {
  return router_load_.to(torch::kCPU).clone();
}

at::Tensor MoeLora::aux_loss() const {
  if (config_.aux_loss_coef == 0 || !aux_loss_.defined())
    return torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(routers_.front().device()));
  return aux_loss_ * config_.aux_loss_coef;
}

void MoeLora::reset_statistics() {
  const auto device = routers_.empty() ? c10::Device(torch::kCPU) : routers_.front().device();
  const int64_t groups = router_load_.defined() ? router_load_.size(0) : 1;
  router_load_ = torch::zeros({groups, static_cast<int64_t>(keys_.size()), expert_count()},
                              torch::TensorOptions().dtype(torch::kFloat64).device(device));
  aux_loss_ = at::Tensor();
}

}  // namespace kmoe
