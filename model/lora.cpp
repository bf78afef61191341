// See lora.h.
#include "model/lora.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/shape_text.h"

namespace kmoe {

namespace {

const LinearModule kAllModules[] = {LinearModule::q_proj,   LinearModule::k_proj,    LinearModule::v_proj,
                                    LinearModule::o_proj,   LinearModule::gate_proj, LinearModule::up_proj,
                                    LinearModule::down_proj};

std::string adapter_error(const LoraAdapter& a, const std::string& what) {
  return "adapter '" + a.name + "': " + what;
}

}  // namespace

double lora_scale(const LoraConfig& config) {
  const double r = static_cast<double>(config.r);
  return config.use_rslora ? config.lora_alpha / std::sqrt(r) : config.lora_alpha / r;
}

bool lora_targets(const LoraConfig& config, int64_t layer, LinearModule module) {
  const auto& mods = config.target_modules;
  if (std::find(mods.begin(), mods.end(), module) == mods.end()) return false;
  const auto& layers = config.layers_to_transform;
  return layers.empty() || std::find(layers.begin(), layers.end(), layer) != layers.end();
}

std::string lora_module_path(int64_t layer, LinearModule module) {
  const bool attention = module == LinearModule::q_proj || module == LinearModule::k_proj ||
                         module == LinearModule::v_proj || module == LinearModule::o_proj;
  return "model.layers." + std::to_string(layer) + (attention ? ".self_attn." : ".mlp.") + linear_module_name(module);
}

std::pair<int64_t, int64_t> linear_features(const ModelConfig& base, LinearModule module) {
  const int64_t head_dim = base.head_dim > 0 ? base.head_dim : base.hidden_size / base.num_attention_heads;
  const int64_t kv_heads = base.num_key_value_heads > 0 ? base.num_key_value_heads : base.num_attention_heads;
  switch (module) {
    case LinearModule::q_proj:
      return {base.hidden_size, base.num_attention_heads * head_dim};
    case LinearModule::k_proj:
    case LinearModule::v_proj:
      return {base.hidden_size, kv_heads * head_dim};
    case LinearModule::o_proj:
      return {base.num_attention_heads * head_dim, base.hidden_size};
    case LinearModule::gate_proj:
    case LinearModule::up_proj:
      return {base.hidden_size, base.intermediate_size};
    case LinearModule::down_proj:
      return {base.intermediate_size, base.hidden_size};
  }
  throw std::invalid_argument("linear_features: unknown module");
}

LoraAdapter lora_adapter_init(const std::string& name, const LoraConfig& config, const ModelConfig& base,
                              double b_std) {
  if (config.r <= 0) throw std::invalid_argument("adapter '" + name + "': rank r must be positive");
  LoraAdapter adapter{name, config, {}};
  torch::NoGradGuard no_grad;
  for (int64_t layer = 0; layer < base.num_hidden_layers; ++layer) {
    for (LinearModule m : kAllModules) {
      if (!lora_targets(config, layer, m)) continue;
      const auto [in, out] = linear_features(base, m);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform_(a=√5) on [r, in]
      LoraWeights w;
      w.A = torch::empty({config.r, in}).uniform_(-bound, bound);
      w.B = b_std > 0 ? torch::randn({out, config.r}) * b_std : torch::zeros({out, config.r});
      adapter.weights.emplace(LoraKey{layer, m}, std::move(w));
    }
  }
  lora_adapter_validate(adapter, base);  // catches layers_to_transform beyond the base
  return adapter;
}

void lora_adapter_validate(const LoraAdapter& adapter, const ModelConfig& base) {
  const LoraConfig& c = adapter.config;
  if (c.r <= 0) throw std::invalid_argument(adapter_error(adapter, "rank r must be positive"));
  if (c.target_modules.empty()) throw std::invalid_argument(adapter_error(adapter, "targets no module"));
  if (c.lora_dropout < 0 || c.lora_dropout >= 1)
    throw std::invalid_argument(adapter_error(adapter, "lora_dropout must be in [0, 1)"));
  for (int64_t layer : c.layers_to_transform) {
    if (layer < 0 || layer >= base.num_hidden_layers)
      throw std::invalid_argument(adapter_error(adapter, "layers_to_transform names layer " + std::to_string(layer) +
                                                             " but the base has " +
                                                             std::to_string(base.num_hidden_layers) + " layers"));
  }
  for (const auto& [key, w] : adapter.weights) {
    const auto [layer, m] = key;
    const std::string path = lora_module_path(layer, m);
    if (layer < 0 || layer >= base.num_hidden_layers)
      throw std::invalid_argument(adapter_error(adapter, path + ": layer " + std::to_string(layer) +
                                                             " is beyond the base's " +
                                                             std::to_string(base.num_hidden_layers) + " layers"));
    if (!lora_targets(c, layer, m))
      throw std::invalid_argument(adapter_error(adapter, path + " has LoRA weights but the config does not target it"));
    const auto [in, out] = linear_features(base, m);
    if (!w.A.defined() || w.A.dim() != 2 || w.A.size(0) != c.r || w.A.size(1) != in)
      throw std::invalid_argument(adapter_error(
          adapter, path + ".lora_A has shape " + (w.A.defined() ? shape_text(w.A) : std::string("(none)")) +
                       " but r = " + std::to_string(c.r) + " and the base's " + linear_module_name(m) + " takes " +
                       std::to_string(in) + " input features: expected [" + std::to_string(c.r) + ", " +
                       std::to_string(in) + "]"));
    if (!w.B.defined() || w.B.dim() != 2 || w.B.size(0) != out || w.B.size(1) != c.r)
      throw std::invalid_argument(adapter_error(
          adapter, path + ".lora_B has shape " + (w.B.defined() ? shape_text(w.B) : std::string("(none)")) +
                       " but r = " + std::to_string(c.r) + " and the base's " + linear_module_name(m) + " gives " +
                       std::to_string(out) + " output features: expected [" + std::to_string(out) + ", " +
                       std::to_string(c.r) + "]"));
    if (!w.A.is_floating_point() || !w.B.is_floating_point())
      throw std::invalid_argument(adapter_error(adapter, path + ": LoRA weights must be floating point"));
  }
  for (int64_t layer = 0; layer < base.num_hidden_layers; ++layer) {
    for (LinearModule m : kAllModules) {
      if (lora_targets(c, layer, m) && !adapter.weights.count({layer, m}))
        throw std::invalid_argument(adapter_error(adapter, "missing LoRA weights for " + lora_module_path(layer, m)));
    }
  }
}

void lora_adapter_requires_grad(LoraAdapter& adapter, bool requires_grad) {
  for (auto& [key, w] : adapter.weights) {
    w.A = w.A.detach().requires_grad_(requires_grad);
    w.B = w.B.detach().requires_grad_(requires_grad);
  }
}

void lora_adapter_to(LoraAdapter& adapter, c10::Device device, c10::ScalarType dtype) {
  for (auto& [key, w] : adapter.weights) {
    w.A = w.A.detach().to(device, dtype).requires_grad_(w.A.requires_grad());
    w.B = w.B.detach().to(device, dtype).requires_grad_(w.B.requires_grad());
  }
}

void LoraSet::add(LoraAdapter adapter) {
  if (adapter.name.empty()) throw std::invalid_argument("LoraSet: an adapter needs a name");
  if (has(adapter.name)) throw std::invalid_argument("adapter '" + adapter.name + "' is already loaded");
  lora_adapter_validate(adapter, base_);
  const std::string name = adapter.name;
  adapters_.emplace(name, std::move(adapter));
}

void LoraSet::remove(const std::string& name) {
  adapter(name);  // throws if absent
  if (name == active_ && merged())
    throw std::invalid_argument("adapter '" + name + "' is merged into the base: restore() before removing it");
  if (name == active_) active_.clear();
  adapters_.erase(name);
}

std::vector<std::string> LoraSet::names() const {
  std::vector<std::string> out;
  for (const auto& [name, a] : adapters_) out.push_back(name);
  return out;
}

LoraAdapter& LoraSet::adapter(const std::string& name) {
  auto it = adapters_.find(name);
  if (it == adapters_.end()) throw std::invalid_argument("no adapter named '" + name + "' is loaded");
  return it->second;
}

const LoraAdapter& LoraSet::adapter(const std::string& name) const {
  return const_cast<LoraSet*>(this)->adapter(name);
}

void LoraSet::activate(const std::string& name) {
  if (merged())
    throw std::invalid_argument("adapter '" + active_ + "' is merged into the base: restore() before switching");
  if (!name.empty()) adapter(name);  // throws if absent
  active_ = name;
}

void LoraSet::merge(const LinearWeightFn& weight) {
  if (active_.empty()) throw std::invalid_argument("LoraSet::merge: no adapter is active");
  if (merged()) throw std::invalid_argument("adapter '" + active_ + "' is already merged");
  const LoraAdapter& a = adapter(active_);
  const double scale = lora_scale(a.config);
  torch::NoGradGuard no_grad;
  std::map<LoraKey, at::Tensor> pristine;
  for (const auto& [key, w] : a.weights) {
    at::Tensor base_w = weight(key.first, key.second);
    const auto [in, out] = linear_features(base_, key.second);
    if (!base_w.defined() || base_w.dim() != 2 || base_w.size(0) != out || base_w.size(1) != in)
      throw std::invalid_argument(adapter_error(a, "cannot merge into " + lora_module_path(key.first, key.second) +
                                                       ".weight: expected [" + std::to_string(out) + ", " +
                                                       std::to_string(in) + "], the base has " +
                                                       (base_w.defined() ? shape_text(base_w) : "none")));
    pristine.emplace(key, base_w.clone());
  }
  // PEFT's get_delta_weight: (B @ A) * scaling, computed in the adapter's dtype, then W += delta.
  for (const auto& [key, w] : a.weights) {
    at::Tensor base_w = weight(key.first, key.second);
    const at::Tensor delta = w.B.detach().matmul(w.A.detach()) * scale;
    base_w.add_(delta.to(base_w.device(), base_w.scalar_type()));
  }
  pristine_ = std::move(pristine);
  merged_weight_ = weight;
}

void LoraSet::restore() {
  if (!merged()) return;
  torch::NoGradGuard no_grad;
  for (const auto& [key, saved] : pristine_) merged_weight_(key.first, key.second).copy_(saved);
  pristine_.clear();
  merged_weight_ = nullptr;
}

at::Tensor LoraSet::delta(int64_t layer, LinearModule module, const at::Tensor& x) const {
  if (active_.empty() || merged()) return {};
  const LoraAdapter& a = adapters_.at(active_);
  auto it = a.weights.find({layer, module});
  if (it == a.weights.end()) return {};
  const LoraWeights& w = it->second;
  at::Tensor h = x.to(w.A.scalar_type());
  if (training_ && a.config.lora_dropout > 0) h = torch::dropout(h, a.config.lora_dropout, /*train=*/true);
  const at::Tensor out = torch::matmul(torch::matmul(h, w.A.t()), w.B.t()) * lora_scale(a.config);
  return out.to(x.scalar_type());
}

}  // namespace kmoe
