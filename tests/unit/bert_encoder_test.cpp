// data/encoders/bert_encoder: a text's vector does not depend on its batch mates, empty text is
// the [CLS][SEP] embedding, truncation at max_tokens, options read from the folder, and
// errors for a folder without config, weights, vocabulary or with a bad tensor.
#include "data/encoders/bert_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "bert_test_model.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

std::string load_error_of(const std::string& folder) {
  try {
    bert_encoder_load(folder, {});
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(BertEncoder, VectorDoesNotDependOnBatchMates) {
  testing::TempDir dir;
  testing::tiny_bert_folder_write(dir.path.string());
  BertEncoderOptions o;
  o.batch_size = 3;
  const auto enc = bert_encoder_load(dir.path.string(), o);
  const at::Tensor alone = enc->encode({"the cat"});
  const at::Tensor batch = enc->encode(
      {"the cat sat on the mat , the cat sat", "hello world", "the cat", "a b c d e a b c d e a b c d e", "cat"});
  ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{5, 16}));
  EXPECT_LT((batch[2] - alone[0]).abs().max().item<double>(), 1e-6);
  EXPECT_GT((batch[1] - alone[0]).abs().max().item<double>(), 1e-3);
  EXPECT_FALSE(enc->describe().normalize);  // no modules.json
}

TEST(BertEncoder, EmptyTextIsTheClsSepEmbedding) {
  testing::TempDir dir;
  testing::tiny_bert_folder_write(dir.path.string());
  const auto enc = bert_encoder_load(dir.path.string(), {});
  const BertModel m = bert_from_weights(testing::tiny_bert_config(), testing::tiny_bert_weights());
  const at::Tensor ids = torch::tensor({{2, 3}}, torch::kInt64);
  const at::Tensor mask = torch::ones({1, 2}, torch::kInt64);
  const at::Tensor want = bert_pool(bert_forward(m, ids, mask), mask, BertPooling::mean, false);
  EXPECT_LT((enc->encode({""}) - want).abs().max().item<double>(), 1e-6);
}

TEST(BertEncoder, FolderSettingsAndTruncation) {
  testing::TempDir dir;
  testing::tiny_bert_folder_write(dir.path.string());
  std::filesystem::create_directory(dir / "1_Pooling");
  std::ofstream(dir / "1_Pooling/config.json")
      << R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})";
  std::ofstream(dir / "modules.json") << R"([{"type": "sentence_transformers.models.Normalize"}])";
  std::ofstream(dir / "sentence_bert_config.json") << R"({"max_seq_length": 5})";
  const auto enc = bert_encoder_load(dir.path.string(), {});
  EXPECT_EQ(enc->describe().pooling, "cls");
  EXPECT_TRUE(enc->describe().normalize);
  EXPECT_EQ(enc->describe().max_tokens, 5);
  EXPECT_EQ(enc->describe().dim, 16);
  const at::Tensor v = enc->encode({"the cat sat on the mat", "the cat sat"});
  EXPECT_NEAR(v[0].norm().item<double>(), 1.0, 1e-5);
  EXPECT_LT((v[0] - v[1]).abs().max().item<double>(), 1e-6);  // both cut to [CLS] the cat sat [SEP]
  BertEncoderOptions prefixed;
  prefixed.prefix = "hello ";
  const auto enc2 = bert_encoder_load(dir.path.string(), prefixed);
  EXPECT_GT((enc2->encode({"the cat"}) - enc->encode({"the cat"})).abs().max().item<double>(), 1e-3);
}

TEST(BertEncoder, MissingConfigWeightsOrVocabAreNamed) {
  testing::TempDir dir;
  testing::tiny_bert_folder_write(dir.path.string());
  std::filesystem::remove(dir / "vocab.txt");
  EXPECT_NE(load_error_of(dir.path.string()).find("vocab.txt"), std::string::npos);
  testing::tiny_bert_folder_write(dir.path.string());
  std::filesystem::remove(dir / "model.safetensors");
  EXPECT_NE(load_error_of(dir.path.string()).find("model.safetensors missing"), std::string::npos);
  testing::tiny_bert_folder_write(dir.path.string());
  std::filesystem::remove(dir / "config.json");
  EXPECT_NE(load_error_of(dir.path.string()).find("config.json missing"), std::string::npos);
  EXPECT_NE(load_error_of(dir / "nowhere").find("not a folder"), std::string::npos);
}

TEST(BertEncoder, BadTensorIsNamedWithTheFile) {
  testing::TempDir dir;
  testing::tiny_bert_folder_write(dir.path.string());
  auto w = testing::tiny_bert_weights();
  w["embeddings.position_embeddings.weight"] = torch::zeros({10, 16});
  safetensors_write(dir / "model.safetensors", w);
  const std::string e = load_error_of(dir.path.string());
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("embeddings.position_embeddings.weight has shape [10, 16]"), std::string::npos) << e;
}

}  // namespace
}  // namespace kmoe
