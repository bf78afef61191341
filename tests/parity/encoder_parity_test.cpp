// kmoe's WordPiece tokenizer and BERT sentence encoder against HF tokenizers and
// sentence-transformers 3.0.1 on all-MiniLM-L6-v2 (encoder_reference.py): identical ids on
// every test string (uncased and cased), identical ids for the sentences (truncation at 256),
// and embeddings with cosine >= 0.9999 for mean+Normalize and for CLS without normalisation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/formats/safetensors.h"
#include "data/tokenizers/wordpiece_tokenizer.h"
#include "data/encoders/bert_encoder.h"

namespace kmoe {
namespace {

using nlohmann::json;

std::string reference_dir() {
  const char* dir = std::getenv("KMOE_PARITY_DIR");
  if (!dir) throw std::runtime_error("KMOE_PARITY_DIR is not set (run through ctest)");
  return std::string(dir) + "/encoder/";
}

const json& expected() {
  static const json j = [] {
    std::ifstream in(reference_dir() + "expected.json");
    if (!in) throw std::runtime_error(reference_dir() + "expected.json missing: run encoder_reference.py");
    return json::parse(in);
  }();
  return j;
}

void expect_ids(const WordpieceTokenizer& tok, const json& want_all, const char* name) {
  const json& strings = expected().at("strings");
  int ok = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i].get<std::string>();
    const auto want = want_all[i].get<std::vector<int32_t>>();
    const auto ids = tok.encode(s, true);
    ok += ids == want;
    EXPECT_EQ(ids, want) << name << " string " << i << " " << json(s).dump();
  }
  std::printf("[parity] wordpiece %s ids %d/%zu\n", name, ok, strings.size());
  EXPECT_GE(strings.size(), 200u);
}

TEST(EncoderParity, WordpieceIdsMatchHFTokenizers) {
  const std::string folder = expected().at("model").get<std::string>();
  const auto tok = WordpieceTokenizer::from_folder(folder);
  expect_ids(*tok, expected().at("ids"), "uncased");
  const json& strings = expected().at("strings");
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(tok->decode(expected().at("ids")[i].get<std::vector<int32_t>>()),
              expected().at("decoded")[i].get<std::string>())
        << "decode of string " << i;
  }
}

TEST(EncoderParity, WordpieceFromVocabTxtMatchesTokenizerJson) {
  const std::string folder = expected().at("model").get<std::string>();
  WordpieceOptions options;  // tokenizer_config.json: do_lower_case true, strip_accents null
  const auto tok = WordpieceTokenizer::from_vocab_file(folder + "/vocab.txt", options);
  expect_ids(*tok, expected().at("ids"), "vocab.txt");
}

TEST(EncoderParity, WordpieceCasedVariantMatchesHFTokenizers) {
  const auto tok = WordpieceTokenizer::from_json_file(expected().at("cased_tokenizer").get<std::string>());
  EXPECT_FALSE(tok->options().lowercase);
  expect_ids(*tok, expected().at("ids_cased"), "cased");
}

void expect_embeddings(const BertEncoderOptions& options, const std::string& tensor, const char* name) {
  const std::string folder = expected().at("model").get<std::string>();
  const auto encoder = bert_encoder_load(folder, options);
  const auto sentences = expected().at("sentences").get<std::vector<std::string>>();
  EXPECT_GE(sentences.size(), 100u);
  const at::Tensor got = encoder->encode(sentences);
  const at::Tensor want = SafetensorsFile(reference_dir() + "embeddings.safetensors").tensor(tensor);
  ASSERT_EQ(got.sizes(), want.sizes());
  const at::Tensor cosine = torch::cosine_similarity(got, want, 1);
  const double min_cos = cosine.min().item<double>();
  const double max_diff = (got - want).abs().max().item<double>();
  std::printf("[parity] %s: %zu sentences, min cosine %.8f, max abs diff %.3g\n", name, sentences.size(), min_cos,
              max_diff);
  EXPECT_GE(min_cos, 0.9999);
  EXPECT_LT(max_diff, 1e-3);
}

TEST(EncoderParity, MiniLMMeanNormalizedMatchesSentenceTransformers) {
  const std::string folder = expected().at("model").get<std::string>();
  const auto encoder = bert_encoder_load(folder, {});
  EXPECT_EQ(encoder->describe().pooling, "mean");
  EXPECT_TRUE(encoder->describe().normalize);
  EXPECT_EQ(encoder->describe().max_tokens, 256);
  EXPECT_EQ(encoder->describe().dim, 384);
  BertEncoderOptions options;
  options.batch_size = 16;
  options.threads = 2;
  expect_embeddings(options, "mean_normalized", "mean+normalize");
}

TEST(EncoderParity, MiniLMClsUnnormalizedMatchesSentenceTransformers) {
  BertEncoderOptions options;
  options.pooling = "cls";
  options.normalize = false;
  options.batch_size = 7;
  expect_embeddings(options, "cls", "cls");
}

TEST(EncoderParity, SentenceIdsTruncatedLikeSentenceTransformers) {
  const std::string folder = expected().at("model").get<std::string>();
  const auto tok = WordpieceTokenizer::from_folder(folder);
  const auto sentences = expected().at("sentences").get<std::vector<std::string>>();
  int truncated = 0;
  for (size_t i = 0; i < sentences.size(); ++i) {
    auto ids = tok->encode(sentences[i], false);
    truncated += ids.size() > 254;
    if (ids.size() > 254) ids.resize(254);
    ids.insert(ids.begin(), tok->cls_id);
    ids.push_back(tok->sep_id);
    EXPECT_EQ(ids, expected().at("sentence_ids")[i].get<std::vector<int32_t>>()) << "sentence " << i;
  }
  EXPECT_GE(truncated, 5);
}

}  // namespace
}  // namespace kmoe
