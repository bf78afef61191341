// kmoe's mixture of LoRA experts against moe_reference.py's token-by-token PyTorch version of
// the same formula (forward hooks on HF's q_proj/v_proj): logits for top-k 1, 2 and 3 over
// three PEFT adapters with different alpha and rslora.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

#include "data/formats/hf_checkpoint.h"
#include "data/formats/moe_file.h"
#include "data/formats/safetensors.h"
#include "model/llama.h"
#include "model/moe_lora.h"

namespace kmoe {
namespace {

std::string moe_dir() {
  const char* d = std::getenv("KMOE_PARITY_DIR");
  if (!d) throw std::runtime_error("KMOE_PARITY_DIR is not set; run through ctest or set it");
  return std::string(d) + "/moe";
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(MoeParity, LogitsMatchAPerTokenPyTorchMixture) {
  const std::string dir = moe_dir();
  const ModelConfig config = hf_config_load(dir + "/base");
  const LlamaModel model = llama_from_weights(config, hf_weights_load(dir + "/base"), torch::kCPU, torch::kFloat32);
  std::map<std::string, at::Tensor> refs;
  SafetensorsFile f(dir + "/refs.safetensors");
  for (const auto& [name, entry] : f.entries()) refs[name] = f.tensor(name);
  const auto experts = moe_load_experts({dir + "/adapters/e0", dir + "/adapters/e1", dir + "/adapters/e2"}, config);
  torch::NoGradGuard no_grad;
  for (int64_t k : {1, 2, 3}) {
    MoeConfig mc;
    mc.top_k = k;
    MoeLora probe(config, experts, mc, 0);
    std::vector<at::Tensor> routers;
    for (const LoraKey& key : probe.keys()) routers.push_back(refs.at("router." + moe_key_name(key)));
    const MoeLora moe(config, experts, mc, routers);
    const at::Tensor logits = llama_forward(model, refs.at("input_ids"), refs.at("attention_mask"), nullptr, &moe);
    const at::Tensor& want = refs.at("logits_top" + std::to_string(k));
    const double d = max_diff(logits, want);
    std::cout << "top_k " << k << ": max |kmoe - PyTorch| = " << d << "\n";
    EXPECT_LT(d, 1e-5) << "top_k " << k;
    EXPECT_GT(max_diff(want, refs.at("base_logits")), 0.5);  // the mixture matters
  }
}

}  // namespace
}  // namespace kmoe
