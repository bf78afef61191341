// See expert_drift.h. The norms are computed from the r × r Gram matrices, never from the
// out × in products: ‖B·A‖² = Σ (BᵀB) ∘ (AAᵀ) and ⟨B·A, B0·A0⟩ = Σ (BᵀB0) ∘ (AA0ᵀ), so a
// 1B model's seven modules per layer cost microseconds each, in float64.
#include "evaluator/expert_drift.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>

#include "data/formats/peft_adapter.h"
#include "data/formats/safetensors.h"
#include "data/store/artifact.h"
#include "data/store/content_hash.h"
#include "model/linear_hook.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

// "layers.3.q_proj" -> (3, q_proj).
std::pair<int64_t, LinearModule> parse_key(const std::string& key, const std::string& file) {
  const auto dot1 = key.find('.'), dot2 = key.find('.', dot1 == std::string::npos ? 0 : dot1 + 1);
  if (key.rfind("layers.", 0) != 0 || dot2 == std::string::npos) {
    throw std::runtime_error(file + ": /moe/keys has '" + key + "', not layers.<i>.<module>");
  }
  try {
    return {std::stoll(key.substr(dot1 + 1, dot2 - dot1 - 1)), linear_module_parse(key.substr(dot2 + 1))};
  } catch (const std::exception&) {
    throw std::runtime_error(file + ": /moe/keys has '" + key + "', not layers.<i>.<module>");
  }
}

at::Tensor read_tensor(const ArtifactReader& r, const std::string& name) {
  const auto shape = r.shape(name);
  auto v = r.read_floats(name);
  return torch::from_blob(v.data(), shape, torch::kFloat32).to(torch::kFloat64);
}

}  // namespace

ExpertDriftResult expert_drift(const std::string& moe_path) {
  ExpertDriftResult out;
  const ArtifactReader r(moe_path);
  const auto names = r.read_strings("moe/expert_names");
  const auto keys = r.read_strings("moe/keys");
  if (!r.has_attr("/", "inputs")) {
    out.unavailable = "it records no inputs (not written by kmoe train), so the adapters it started from are unknown";
    return out;
  }
  std::map<std::string, InputRecord> inputs;
  for (const auto& in : r.provenance().inputs) inputs[in.name] = in;
  std::vector<std::unique_ptr<SafetensorsFile>> adapters;
  for (size_t e = 0; e < names.size(); ++e) {
    const std::string role = "adapter/" + std::to_string(e);
    const auto it = inputs.find(role);
    auto unavailable = [&](const std::string& why) {
      out.experts.clear();
      out.unavailable = why;
      return out;
    };
    if (it == inputs.end()) return unavailable("the provenance names no " + role + " (expert '" + names[e] + "')");
    const std::string& dir = it->second.path;
    if (!fs::exists(fs::path(dir) / "adapter_model.safetensors")) return unavailable(role + " (" + dir + ") no longer exists");
    if (content_hash(dir) != it->second.sha256) return unavailable(role + " (" + dir + ") has changed since training");
    adapters.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / "adapter_model.safetensors").string()));
    out.experts.push_back({names[e], dir, 0, 0, 0});
  }
  const size_t n = names.size();
  std::vector<double> trained(n, 0.0), init(n, 0.0), cross(n, 0.0);
  for (const auto& key : keys) {
    const auto [layer, module] = parse_key(key, moe_path);
    const at::Tensor A = read_tensor(r, "moe/" + key + "/lora_A");  // [N, r, in]
    const at::Tensor B = read_tensor(r, "moe/" + key + "/lora_B");  // [N, out, r]
    if (A.dim() != 3 || B.dim() != 3 || A.size(0) != static_cast<int64_t>(n) || B.size(0) != static_cast<int64_t>(n)) {
      throw std::runtime_error(moe_path + ": /moe/" + key + "/lora_A or lora_B is not [" + std::to_string(n) +
                               " experts, ...]");
    }
    for (size_t e = 0; e < n; ++e) {
      const SafetensorsFile& f = *adapters[e];
      const at::Tensor A0 = f.tensor(peft_tensor_key(layer, module, 'A')).to(torch::kFloat64);
      const at::Tensor B0 = f.tensor(peft_tensor_key(layer, module, 'B')).to(torch::kFloat64);
      const at::Tensor a = A[e], b = B[e];
      if (A0.sizes() != a.sizes() || B0.sizes() != b.sizes()) {
        throw std::runtime_error(f.path() + ": the lora_A/lora_B of " + key + " do not have the shapes of expert '" +
                                 names[e] + "' in " + moe_path);
      }
      trained[e] += (b.t().mm(b) * a.mm(a.t())).sum().item<double>();
      init[e] += (B0.t().mm(B0) * A0.mm(A0.t())).sum().item<double>();
      cross[e] += (b.t().mm(B0) * a.mm(A0.t())).sum().item<double>();
    }
  }
  for (size_t e = 0; e < n; ++e) {
    ExpertDrift& d = out.experts[e];
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (init[e] <= 0) {
      d.norm_ratio = d.change = d.cosine = nan;
      continue;
    }
    d.norm_ratio = std::sqrt(trained[e] / init[e]);
    d.change = std::sqrt(std::max(0.0, trained[e] + init[e] - 2 * cross[e]) / init[e]);
    d.cosine = trained[e] > 0 ? cross[e] / std::sqrt(trained[e] * init[e]) : nan;
  }
  return out;
}

}  // namespace kmoe
