// model/bert: weights validated by name and shape, "bert." prefix accepted, padding does not
// change a row's hidden states, pooling over non-pad tokens, L2 normalisation; bfloat16
// projections give float32 hidden states close to the float32 model's, padding still inert.
#include "model/bert.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "bert_test_model.h"

namespace kmoe {
namespace {

TEST(Bert, MissingTensorIsNamed) {
  auto w = testing::tiny_bert_weights();
  w.erase("encoder.layer.1.attention.self.key.bias");
  try {
    bert_from_weights(testing::tiny_bert_config(), w);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.1.attention.self.key.bias is missing"), std::string::npos)
        << e.what();
  }
}

TEST(Bert, WrongShapeIsNamed) {
  auto w = testing::tiny_bert_weights();
  w["encoder.layer.0.intermediate.dense.weight"] = torch::zeros({31, 16});
  try {
    bert_from_weights(testing::tiny_bert_config(), w);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.0.intermediate.dense.weight has shape [31, 16]"),
              std::string::npos)
        << e.what();
  }
}

TEST(Bert, UnsupportedActivationIsRejected) {
  BertConfig c = testing::tiny_bert_config();
  c.hidden_act = "relu";
  EXPECT_THROW(bert_from_weights(c, testing::tiny_bert_weights()), std::runtime_error);
}

TEST(Bert, PrefixedWeightsGiveTheSameModel) {
  const BertModel a = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights());
  const BertModel b = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights("bert."));
  const at::Tensor ids = torch::tensor({{2, 6, 7, 3}}, torch::kInt64);
  const at::Tensor mask = torch::ones({1, 4}, torch::kInt64);
  EXPECT_TRUE(torch::equal(bert_forward(a, ids, mask), bert_forward(b, ids, mask)));
}

TEST(Bert, Bfloat16ProjectionsStayCloseToFloat32) {
  const BertModel f32 = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights());
  const BertModel bf16 = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights(), torch::kBFloat16);
  EXPECT_EQ(bf16.layers[0].q_w.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(bf16.layers[0].attn_ln_w.scalar_type(), torch::kFloat32);  // norms stay float32
  const at::Tensor ids = torch::tensor({{2, 6, 7, 3, 0, 0}, {2, 5, 6, 7, 8, 3}}, torch::kInt64);
  const at::Tensor mask = torch::tensor({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}}, torch::kInt64);
  const at::Tensor a = bert_forward(f32, ids, mask), b = bert_forward(bf16, ids, mask);
  ASSERT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(torch::equal(a, b));  // the projections did run in bf16
  // post-LN hidden states are O(1): bf16's 8-bit mantissa over two layers stays within 0.1
  EXPECT_LT((a - b).abs().max().item<double>(), 0.1);
  const at::Tensor pa = bert_pool(a, mask, BertPooling::mean, true), pb = bert_pool(b, mask, BertPooling::mean, true);
  EXPECT_GT((pa * pb).sum(-1).min().item<double>(), 0.999);
  const at::Tensor alone =
      bert_forward(bf16, torch::tensor({{2, 6, 7, 3}}, torch::kInt64), torch::ones({1, 4}, torch::kInt64));
  EXPECT_LT((b[0].narrow(0, 0, 4) - alone[0]).abs().max().item<double>(), 1e-2);
}

TEST(Bert, PaddingDoesNotChangeRealTokens) {
  const BertModel m = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights());
  const at::Tensor alone =
      bert_forward(m, torch::tensor({{2, 6, 7, 3}}, torch::kInt64), torch::ones({1, 4}, torch::kInt64));
  const at::Tensor ids = torch::tensor({{2, 6, 7, 3, 0, 0, 0}, {2, 5, 6, 7, 8, 9, 3}}, torch::kInt64);
  const at::Tensor mask = torch::tensor({{1, 1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1}}, torch::kInt64);
  const at::Tensor padded = bert_forward(m, ids, mask);
  EXPECT_LT((padded[0].narrow(0, 0, 4) - alone[0]).abs().max().item<double>(), 1e-5);
  // the other row differs: the model does look at the tokens
  EXPECT_GT((padded[1].narrow(0, 0, 4) - alone[0]).abs().max().item<double>(), 1e-3);
}

TEST(Bert, MeanPoolingSkipsPadsAndNormalizeGivesUnitNorm) {
  const at::Tensor hidden = torch::tensor({{{1.0f, 2.0f}, {3.0f, 4.0f}, {100.0f, 100.0f}}});
  const at::Tensor mask = torch::tensor({{1, 1, 0}}, torch::kInt64);
  const at::Tensor mean = bert_pool(hidden, mask, BertPooling::mean, false);
  EXPECT_TRUE(torch::allclose(mean, torch::tensor({{2.0f, 3.0f}})));
  const at::Tensor cls = bert_pool(hidden, mask, BertPooling::cls, false);
  EXPECT_TRUE(torch::allclose(cls, torch::tensor({{1.0f, 2.0f}})));
  const at::Tensor unit = bert_pool(hidden, mask, BertPooling::mean, true);
  EXPECT_NEAR(unit.norm().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(unit[0][0].item<double>(), 2.0 / std::sqrt(13.0), 1e-6);
}

TEST(Bert, MismatchedMaskIsRejected) {
  const BertModel m = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights());
  EXPECT_THROW(bert_forward(m, torch::zeros({1, 4}, torch::kInt64), torch::ones({1, 3}, torch::kInt64)),
               std::runtime_error);
  EXPECT_THROW(bert_forward(m, torch::zeros({1, 65}, torch::kInt64), torch::ones({1, 65}, torch::kInt64)),
               std::runtime_error);
}

}  // namespace
}  // namespace kmoe
