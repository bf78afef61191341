// See moe_file.h. Experts are stacked per key ([N, r, in], [N, out, r]) rather than stored
// per expert, so an h5py user gets one array per adapted module and the layout does not
// depend on how many experts there are.
#include "data/formats/moe_file.h"

#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/store/artifact_tensor.h"
#include "data/formats/peft_adapter.h"
#include "model/shape_text.h"

namespace kmoe {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument(path + ": " + what);
}

// The float tensor `name`, which must have `shape`.
at::Tensor read_shaped(const ArtifactReader& r, const std::string& name, const std::vector<int64_t>& shape) {
  if (!r.has(name)) fail(r.path(), "missing tensor /" + name);
  const auto got = r.shape(name);
  if (got != shape || !r.is_float(name))
    fail(r.path(), "tensor /" + name + " has shape " + shape_text(got) + (r.is_float(name) ? "" : " (not floats)") +
                       ", expected " + shape_text(shape) + " floats");
  return artifact_read_tensor(r, name);
}

json attr_json(const ArtifactReader& r, const std::string& key) {
  if (!r.has_attr("moe", key)) fail(r.path(), "missing attribute '" + key + "' on /moe");
  json j = json::parse(r.attr_string("moe", key), nullptr, false);
  if (!j.is_array()) fail(r.path(), "attribute '" + key + "' on /moe is not a JSON array");
  return j;
}

int64_t attr_int(const ArtifactReader& r, const std::string& key) {
  if (!r.has_attr("moe", key)) fail(r.path(), "missing attribute '" + key + "' on /moe");
  return r.attr_int64("moe", key);
}

double attr_real(const ArtifactReader& r, const std::string& key) {
  if (!r.has_attr("moe", key)) fail(r.path(), "missing attribute '" + key + "' on /moe");
  return r.attr_double("moe", key);
}

}  // namespace

void moe_write(ArtifactWriter& w, const MoeLora& moe) {
  const auto& experts = moe.experts();
  const LoraConfig& first = experts.front().config;
  std::vector<std::string> keys, names;
  json alpha = json::array(), rslora = json::array(), targets = json::array(), layers = json::array();
  for (const auto& e : experts) {
    names.push_back(e.name);
    alpha.push_back(e.config.lora_alpha);
    rslora.push_back(e.config.use_rslora);
  }
  for (LinearModule m : first.target_modules) targets.push_back(linear_module_name(m));
  for (const auto& key : moe.keys()) {
    keys.push_back(moe_key_name(key));
    if (layers.empty() || layers.back() != key.first) layers.push_back(key.first);
  }
  w.write_strings("moe/keys", keys);
  w.write_strings("moe/expert_names", names);
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < keys.size(); ++k) {
    std::vector<at::Tensor> as, bs;
    for (const auto& e : experts) {
      as.push_back(e.weights.at(moe.keys()[k]).A.detach().to(torch::kCPU, torch::kFloat32));
      bs.push_back(e.weights.at(moe.keys()[k]).B.detach().to(torch::kCPU, torch::kFloat32));
    }
    const std::string g = "moe/" + keys[k] + "/";
    artifact_write_tensor(w, g + "router", moe.routers()[k]);
    artifact_write_tensor(w, g + "lora_A", torch::stack(as));
    artifact_write_tensor(w, g + "lora_B", torch::stack(bs));
  }
  const MoeConfig& c = moe.config();
  w.set_attr("moe", "top_k", c.top_k);
  w.set_attr("moe", "aux_loss_coef", c.aux_loss_coef);
  w.set_attr("moe", "train_experts", int64_t{c.train_experts ? 1 : 0});
  w.set_attr("moe", "expert_dropout", c.expert_dropout);
  w.set_attr("moe", "r", first.r);
  w.set_attr("moe", "expert_alpha", alpha.dump());
  w.set_attr("moe", "expert_use_rslora", rslora.dump());
  w.set_attr("moe", "target_modules", targets.dump());
  w.set_attr("moe", "layers", layers.dump());
}

MoeLora moe_read(const std::string& path, const ModelConfig& base) {
  const ArtifactReader r(path);
  if (!r.has("moe/keys") || !r.has("moe/expert_names"))
    fail(path, "no mixture of LoRA experts in it (missing /moe/keys or /moe/expert_names)");
  const auto names = r.read_strings("moe/expert_names");
  const auto keys = r.read_strings("moe/keys");
  const int64_t n = static_cast<int64_t>(names.size());
  if (n == 0) fail(path, "/moe/expert_names is empty");

  MoeConfig mc;
  mc.top_k = attr_int(r, "top_k");
  mc.aux_loss_coef = attr_real(r, "aux_loss_coef");
  mc.train_experts = attr_int(r, "train_experts") != 0;
  mc.expert_dropout = r.has_attr("moe", "expert_dropout") ? r.attr_double("moe", "expert_dropout") : 0.0;
  LoraConfig lc;
  lc.r = attr_int(r, "r");
  if (lc.r <= 0) fail(path, "attribute 'r' on /moe is " + std::to_string(lc.r));
  const json alpha = attr_json(r, "expert_alpha"), rslora = attr_json(r, "expert_use_rslora");
  if (static_cast<int64_t>(alpha.size()) != n || static_cast<int64_t>(rslora.size()) != n)
    fail(path,
         "attributes expert_alpha and expert_use_rslora on /moe need one entry per expert (" + std::to_string(n) + ")");
  try {
    for (const auto& t : attr_json(r, "target_modules"))
      lc.target_modules.push_back(linear_module_parse(t.get<std::string>()));
    const json layers = attr_json(r, "layers");
    if (static_cast<int64_t>(layers.size()) != base.num_hidden_layers)
      lc.layers_to_transform = layers.get<std::vector<int64_t>>();
  } catch (const std::exception& e) {
    fail(path, std::string("attributes target_modules/layers on /moe: ") + e.what());
  }

  std::vector<LoraAdapter> experts;
  for (int64_t e = 0; e < n; ++e) {
    LoraAdapter a{names[e], lc, {}};
    a.config.lora_alpha = alpha[e].is_number() ? alpha[e].get<double>() : 0.0;
    a.config.use_rslora = rslora[e].is_boolean() ? rslora[e].get<bool>() : rslora[e].is_number() && rslora[e] != 0;
    experts.push_back(std::move(a));
  }
  std::map<LoraKey, at::Tensor> routers;  // sorted as MoeLora::keys()
  for (const auto& key_name : keys) {
    LoraKey key{-1, LinearModule::q_proj};
    const std::string prefix = "layers.";
    const auto dot = key_name.find('.', prefix.size());
    try {
      if (key_name.rfind(prefix, 0) != 0 || dot == std::string::npos) throw std::invalid_argument("bad key");
      key = {std::stoll(key_name.substr(prefix.size(), dot - prefix.size())),
             linear_module_parse(key_name.substr(dot + 1))};
    } catch (const std::exception&) {
      fail(path, "/moe/keys holds '" + key_name + "', expected names like 'layers.3.q_proj'");
    }
    if (key.first < 0 || key.first >= base.num_hidden_layers)
      fail(path, "/moe/keys names layer " + std::to_string(key.first) + " but the base has " +
                     std::to_string(base.num_hidden_layers) + " layers");
    const auto [in, out] = linear_features(base, key.second);
    const std::string g = "moe/" + key_name + "/";
    if (!routers.emplace(key, read_shaped(r, g + "router", {n, in})).second)
      fail(path, "/moe/keys lists '" + key_name + "' twice");
    const at::Tensor a = read_shaped(r, g + "lora_A", {n, lc.r, in});
    const at::Tensor b = read_shaped(r, g + "lora_B", {n, out, lc.r});
    for (const auto& [what, t] : {std::pair<const char*, const at::Tensor*>{"router", &routers.at(key)},
                                  {"lora_A", &a}, {"lora_B", &b}}) {
      if (!at::isfinite(*t).all().item<bool>())
        fail(path, "dataset '" + g + what + "' holds non-finite values (NaN or inf)");
    }
    for (int64_t e = 0; e < n; ++e) experts[e].weights[key] = LoraWeights{a[e].clone(), b[e].clone()};
  }
  std::vector<at::Tensor> router_list;
  for (auto& [key, t] : routers) router_list.push_back(std::move(t));
  try {
    return MoeLora(base, std::move(experts), mc, std::move(router_list));
  } catch (const std::invalid_argument& e) {
    fail(path, e.what());
  }
}

std::vector<LoraAdapter> moe_load_experts(const std::vector<std::string>& adapter_dirs, const ModelConfig& base) {
  std::vector<LoraAdapter> experts;
  for (const auto& dir : adapter_dirs) experts.push_back(peft_adapter_load(dir, base));
  moe_experts_validate(experts, base);
  return experts;
}

}  // namespace kmoe
