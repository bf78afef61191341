// kmoe's Adafactor against transformers' (optimizer_reference.py): the same parameters,
// gradients and per-step learning rates give the same parameters after four steps, with
// parameter scaling and weight decay and without, for a matrix, a vector and a 3-d tensor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <string>

#include "data/formats/safetensors.h"
#include "trainer/optimizer.h"

namespace kmoe {
namespace {

std::map<std::string, at::Tensor> adafactor_reference() {
  const char* d = std::getenv("KMOE_PARITY_DIR");
  if (!d) throw std::runtime_error("KMOE_PARITY_DIR is not set; run through ctest or set it");
  std::map<std::string, at::Tensor> refs;
  SafetensorsFile f(std::string(d) + "/optimizer/adafactor.safetensors");
  for (const auto& [name, entry] : f.entries()) refs[name] = f.tensor(name);
  return refs;
}

TEST(OptimizerParity, AdafactorMatchesTransformers) {
  const auto refs = adafactor_reference();
  const std::vector<std::string> names = {"matrix", "vector", "cube", "prompt"};
  const at::Tensor lrs = refs.at("lr");
  for (const bool scaled : {true, false}) {
    std::vector<at::Tensor> params;
    for (const auto& n : names) params.push_back(refs.at("init/" + n).clone());
    AdafactorOptions o;
    o.scale_parameter = scaled;
    o.weight_decay = scaled ? 0.01 : 0.0;
    Adafactor opt(params, o);
    for (int64_t step = 0; step < lrs.size(0); ++step) {
      for (size_t i = 0; i < names.size(); ++i)
        params[i].mutable_grad() = refs.at("grad/" + std::to_string(step) + "/" + names[i]).clone();
      opt.step(lrs[step].item<double>());
      opt.zero_grad();
    }
    const std::string c = scaled ? "scaled" : "plain";
    for (size_t i = 0; i < names.size(); ++i) {
      const at::Tensor want = refs.at(c + "/final/" + names[i]);
      const at::Tensor moved = want - refs.at("init/" + names[i]);
      EXPECT_GT(moved.abs().max().item<double>(), 1e-2) << c << " " << names[i];
      EXPECT_LT((params[i] - want).abs().max().item<double>(), 1e-6 * (1 + want.abs().max().item<double>()))
          << c << " " << names[i];
    }
    // the state a checkpoint stores: factored (row, col) for tensors of 2+ dimensions
    EXPECT_EQ(opt.state_a()[0].sizes(), (std::vector<int64_t>{6}));
    EXPECT_EQ(opt.state_b()[0].sizes(), (std::vector<int64_t>{5}));
    EXPECT_EQ(opt.state_b()[1].sizes(), (std::vector<int64_t>{7}));
    EXPECT_EQ(opt.state_a()[2].sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(opt.state_b()[2].sizes(), (std::vector<int64_t>{2, 4}));
  }
}

}  // namespace
}  // namespace kmoe
