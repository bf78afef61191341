// kmoe's decoder against transformers (fp32, eager attention) on the small random models
// written by llama_reference.py; and safetensors files crossing between kmoe and python.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/formats/hf_checkpoint.h"
#include "data/formats/safetensors.h"
#include "model/llama.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

constexpr double kLogitTolerance = 1e-4;

std::string parity_dir() {
  const char* d = std::getenv("KMOE_PARITY_DIR");
  return d ? std::string(d) + "/llama" : "";
}

struct Reference {
  LlamaModel model;
  std::unique_ptr<SafetensorsFile> ref;
};

Reference reference_load(const std::string& kind, const std::string& weights_kind = "") {
  const std::string dir = parity_dir() + "/" + kind;
  const std::string weights_dir = parity_dir() + "/" + (weights_kind.empty() ? kind : weights_kind);
  Reference r;
  r.model = llama_from_weights(hf_config_load(weights_dir), hf_weights_load(weights_dir), torch::kCPU, torch::kFloat32);
  r.ref = std::make_unique<SafetensorsFile>(dir + "/reference.safetensors");
  return r;
}

// max |a - b| over the positions where mask [batch, seq] is 1.
double masked_max_abs_diff(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  const at::Tensor keep = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(keep).max().item<double>();
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

class LlamaParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (parity_dir().empty()) FAIL() << "KMOE_PARITY_DIR is not set (run through ctest)";
  }
};

TEST_P(LlamaParity, LogitsMatchTransformersWithoutPadding) {
  torch::NoGradGuard no_grad;
  const Reference r = reference_load(GetParam());
  const at::Tensor ids = r.ref->tensor("full_ids");
  const at::Tensor want = r.ref->tensor("full_logits");
  const at::Tensor got = llama_forward(r.model, ids, at::Tensor());
  ASSERT_EQ(got.sizes(), want.sizes());
  const double diff = (got - want).abs().max().item<double>();
  std::cout << GetParam() << " unpadded logits max abs diff " << diff << "\n";
  EXPECT_LT(diff, kLogitTolerance);
}

TEST_P(LlamaParity, LogitsMatchTransformersWithRightAndLeftPadding) {
  torch::NoGradGuard no_grad;
  const Reference r = reference_load(GetParam());
  for (const std::string side : {"right", "left"}) {
    const at::Tensor ids = r.ref->tensor(side + "_ids");
    const at::Tensor mask = r.ref->tensor(side + "_mask");
    const at::Tensor got = llama_forward(r.model, ids, mask);
    ASSERT_FALSE(torch::isnan(got).any().item<bool>()) << side;
    const double diff = masked_max_abs_diff(got, r.ref->tensor(side + "_logits"), mask);
    std::cout << GetParam() << " " << side << "-padded logits max abs diff " << diff << "\n";
    EXPECT_LT(diff, kLogitTolerance) << side;
  }
}

TEST_P(LlamaParity, PaddingDoesNotChangeARowsLogits) {
  torch::NoGradGuard no_grad;
  const Reference r = reference_load(GetParam());
  const at::Tensor mask = r.ref->tensor("left_mask");
  const at::Tensor batch = llama_forward(r.model, r.ref->tensor("left_ids"), mask);
  // row 2 (3 tokens) alone, without its 10 left pads
  const int64_t n = mask[2].sum().item<int64_t>();
  const at::Tensor alone =
      llama_forward(r.model, r.ref->tensor("left_ids")[2].narrow(0, mask.size(1) - n, n).unsqueeze(0), at::Tensor());
  EXPECT_LT((batch[2].narrow(0, mask.size(1) - n, n) - alone[0]).abs().max().item<double>(), 1e-4);
}

TEST_P(LlamaParity, GreedyGenerationMatchesTransformersOneByOneAndBatched) {
  const Reference r = reference_load(GetParam());
  std::vector<std::vector<int64_t>> prompts, want;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(to_vector(r.ref->tensor("gen_prompt_" + std::to_string(i))));
    want.push_back(to_vector(r.ref->tensor("gen_tokens_" + std::to_string(i))));
  }
  GenerateOptions o;
  o.max_new_tokens = static_cast<int64_t>(want[0].size());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(llama_generate(r.model, {prompts[i]}, o)[0], want[i]) << "prompt " << i;
  EXPECT_EQ(llama_generate(r.model, prompts, o), want);  // left-padded batch, prompts of 13, 7, 3 tokens

  // a stop token ends its sequence (and is kept) but not the others
  o.stop_token_ids = {want[1][4]};
  const auto stopped = llama_generate(r.model, prompts, o);
  const auto first = std::find(want[1].begin(), want[1].end(), want[1][4]);
  EXPECT_EQ(stopped[1], std::vector<int64_t>(want[1].begin(), first + 1));
}

TEST_P(LlamaParity, ContinuationLogprobsMatchLogSoftmaxOfReferenceLogits) {
  torch::NoGradGuard no_grad;
  const Reference r = reference_load(GetParam());
  const std::vector<int64_t> ids = to_vector(r.ref->tensor("full_ids"));
  const at::Tensor ref_logprobs = r.ref->tensor("full_logits")[0].log_softmax(-1);  // [seq, vocab]
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> pairs;
  for (size_t p : {1, 5, 9}) pairs.push_back({{ids.begin(), ids.begin() + p}, {ids.begin() + p, ids.end()}});
  const auto got = llama_continuation_logprobs_batch(r.model, pairs);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const int64_t p = pairs[i].first.size(), n = pairs[i].second.size();
    ASSERT_EQ(got[i].size(0), n);
    const at::Tensor want =
        ref_logprobs.narrow(0, p - 1, n).gather(-1, torch::tensor(pairs[i].second).unsqueeze(-1)).squeeze(-1);
    const double diff = (got[i] - want).abs().max().item<double>();
    std::cout << GetParam() << " continuation log-probs (prompt " << p << ") max abs diff " << diff << "\n";
    EXPECT_LT(diff, kLogitTolerance);
  }
  const at::Tensor single = llama_continuation_logprobs(r.model, pairs[1].first, pairs[1].second);
  EXPECT_LT((single - got[1]).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Models, LlamaParity, ::testing::Values("gqa", "llama3", "qwen2"));

TEST(LlamaParitySharded, ShardedCheckpointGivesTheSameLogits) {
  ASSERT_FALSE(parity_dir().empty());
  torch::NoGradGuard no_grad;
  const std::string index = parity_dir() + "/gqa_sharded/model.safetensors.index.json";
  ASSERT_TRUE(std::filesystem::exists(index));
  const Reference r = reference_load("gqa", "gqa_sharded");
  const at::Tensor mask = r.ref->tensor("right_mask");
  const at::Tensor got = llama_forward(r.model, r.ref->tensor("right_ids"), mask);
  const double diff = masked_max_abs_diff(got, r.ref->tensor("right_logits"), mask);
  std::cout << "gqa_sharded right-padded logits max abs diff " << diff << "\n";
  EXPECT_LT(diff, kLogitTolerance);
}

TEST(SafetensorsInterop, FileWrittenByPythonReads) {
  ASSERT_FALSE(parity_dir().empty());
  SafetensorsFile f(parity_dir() + "/interop/python_written.safetensors");
  EXPECT_EQ(f.metadata().at("who"), "python");
  const at::Tensor a = torch::arange(12, torch::kFloat64).reshape({3, 4}) * 0.5 - 2;
  EXPECT_TRUE(torch::equal(f.tensor("f64"), a));
  EXPECT_TRUE(torch::equal(f.tensor("f32"), a.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(f.tensor("f16"), a.to(torch::kFloat16)));
  EXPECT_TRUE(torch::equal(f.tensor("bf16"), a.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(f.tensor("i64"), torch::arange(-6, 6, torch::kInt64)));
  EXPECT_TRUE(torch::equal(f.tensor("i32"), torch::arange(-6, 6, torch::kInt32)));
  EXPECT_TRUE(torch::equal(f.tensor("i16"), torch::arange(-6, 6, torch::kInt16)));
  EXPECT_TRUE(torch::equal(f.tensor("i8"), torch::arange(-6, 6, torch::kInt8)));
  EXPECT_TRUE(torch::equal(f.tensor("u8"), torch::arange(0, 12, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(f.tensor("bool"), torch::arange(12).remainder(3) == 0));
}

TEST(SafetensorsInterop, FileWrittenByKmoeLoadsInPython) {
  // KMOE_REF_PYTHON, else the reference venv beside the parity folder (build/refenv): CTest's
  // gtest_discover_tests passes on only the first variable of the parity environment.
  std::string python = std::getenv("KMOE_REF_PYTHON") ? std::getenv("KMOE_REF_PYTHON") : "";
  if (python.empty() && std::getenv("KMOE_PARITY_DIR")) {
    python = (std::filesystem::path(std::getenv("KMOE_PARITY_DIR")).parent_path() / "refenv/bin/python").string();
  }
  ASSERT_TRUE(!python.empty() && std::filesystem::exists(python)) << "no reference python (set KMOE_REF_PYTHON)";
  testing::TempDir dir;
  const at::Tensor a = torch::arange(12, torch::kFloat64).reshape({3, 4}) * 0.5 - 2;
  safetensors_write(dir / "kmoe.safetensors",
                    {{"f64", a},
                     {"f32", a.to(torch::kFloat32)},
                     {"f16", a.to(torch::kFloat16)},
                     {"bf16", a.to(torch::kBFloat16)},
                     {"i64", torch::arange(-6, 6, torch::kInt64)},
                     {"i8", torch::arange(-6, 6, torch::kInt8)},
                     {"u8", torch::arange(0, 12, torch::kUInt8)},
                     {"bool", torch::arange(12).remainder(3) == 0}},
                    {{"who", "kmoe"}});
  std::ofstream(dir / "check.py") << R"(import sys, torch
from safetensors import safe_open
with safe_open(sys.argv[1], framework="pt") as f:
    assert f.metadata() == {"who": "kmoe"}, f.metadata()
    t = {k: f.get_tensor(k) for k in f.keys()}
a = torch.arange(12, dtype=torch.float64).reshape(3, 4) * 0.5 - 2
assert torch.equal(t["f64"], a) and torch.equal(t["f32"], a.float())
assert torch.equal(t["f16"], a.half()) and torch.equal(t["bf16"], a.bfloat16())
assert torch.equal(t["i64"], torch.arange(-6, 6)) and torch.equal(t["i8"], torch.arange(-6, 6, dtype=torch.int8))
assert torch.equal(t["u8"], torch.arange(12, dtype=torch.uint8)) and torch.equal(t["bool"], torch.arange(12) % 3 == 0)
print("ok")
)";
  const std::string cmd = python + " " + (dir / "check.py") + " " + (dir / "kmoe.safetensors");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
}  // namespace kmoe
