// The decoder encoder on a tiny random LLaMA: unit-norm vectors of the model's width, and a
// text's vector does not depend on the batch (padding) it is encoded in.
#include "data/encoders/decoder_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/formats/safetensors.h"
#include "temp_dir.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

using nlohmann::json;

// The tiny LLaMA folder of the model-files tests; vocab = the tokenizer's 258 tokens.
void write_tiny_llama(const std::string& dir) {
  testing::write_tiny_hf_model(dir, 258);
}

TEST(DecoderEncoder, UnitVectorsOfModelWidthDescribedForTheArtifact) {
  testing::TempDir dir;
  write_tiny_llama(dir.path.string());
  const auto enc = decoder_encoder_load(dir.path.string(), {});
  const at::Tensor e = enc->encode({"hello world", "a"});
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({2}), 1e-5, 1e-6));
  EXPECT_EQ(enc->describe().kind, "decoder");
  EXPECT_EQ(enc->describe().pooling, "mean");
  EXPECT_EQ(enc->describe().dim, 16);
  EXPECT_EQ(enc->describe().model_sha256.size(), 64u);
  EXPECT_FALSE(torch::allclose(e[0], e[1], 1e-3, 1e-3));  // different texts, different vectors
}

TEST(DecoderEncoder, VectorDoesNotDependOnBatchOrPadding) {
  testing::TempDir dir;
  write_tiny_llama(dir.path.string());
  const auto enc = decoder_encoder_load(dir.path.string(), {});
  const at::Tensor alone = enc->encode({"short"});
  const at::Tensor batched = enc->encode({"a much longer text that forces padding of the short one", "short"});
  EXPECT_TRUE(torch::allclose(alone[0], batched[1], 1e-5, 1e-6)) << (alone[0] - batched[1]).abs().max();
}

TEST(DecoderEncoder, PrefixAndNormalizeChangeTheResult) {
  testing::TempDir dir;
  write_tiny_llama(dir.path.string());
  DecoderEncoderOptions o;
  o.normalize = false;
  o.prefix = "query: ";
  const auto enc = decoder_encoder_load(dir.path.string(), o);
  const auto plain = decoder_encoder_load(dir.path.string(), {});
  const at::Tensor a = enc->encode({"text"});
  const at::Tensor b = plain->encode({"text"});
  EXPECT_FALSE(torch::allclose(a / a.norm(), b, 1e-4, 1e-4));
  EXPECT_EQ(enc->describe().prefix, "query: ");
  EXPECT_FALSE(enc->describe().normalize);
}

TEST(DecoderEncoder, MissingModelNamesThePath) {
  try {
    decoder_encoder_load("/nonexistent/model-dir", {});
    FAIL() << "expected an exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kmoe
