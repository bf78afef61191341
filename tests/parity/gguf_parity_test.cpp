// kmoe's GGUF reader against gguf-py and transformers (gguf_reference.py): metadata of every
// value type and dequantised tensors of every supported type bit for bit, and on the real
// SmolLM2 GGUF the config, tokenizer fields and HF-named weights transformers derives.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/formats/gguf.h"

namespace kmoe {
namespace {

std::string parity_dir() {
  const char* d = std::getenv("KMOE_PARITY_DIR");
  if (!d) throw std::runtime_error("KMOE_PARITY_DIR is not set (run through ctest)");
  return std::string(d) + "/gguf/";
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open (did gguf_reference.py run?)");
  return nlohmann::json::parse(in);
}

// A reference tensor: raw little-endian float32 in C order, shape from the JSON entry.
at::Tensor read_reference(const nlohmann::json& entry) {
  const std::string path = parity_dir() + entry["file"].get<std::string>();
  std::vector<int64_t> shape = entry["shape"].get<std::vector<int64_t>>();
  at::Tensor t = at::empty(shape, at::kFloat);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(t.data_ptr<float>()), t.numel() * 4);
  if (!in) throw std::runtime_error(path + ": short read");
  return t;
}

// Bit-for-bit equality (so -0 vs 0 and NaN payloads count); returns max |a - b| for the report.
double expect_bits_equal(const at::Tensor& got, const at::Tensor& want, const std::string& name) {
  EXPECT_EQ(got.sizes(), want.sizes()) << name;
  if (got.sizes() != want.sizes()) return INFINITY;
  const at::Tensor g = got.contiguous(), w = want.contiguous();
  EXPECT_EQ(std::memcmp(g.data_ptr<float>(), w.data_ptr<float>(), g.numel() * 4), 0) << name << " differs in bits";
  return g.numel() ? (g - w).abs().max().item<double>() : 0.0;
}

TEST(GgufParity, SyntheticMetadataOfEveryTypeMatchesWriter) {
  const nlohmann::json ref = read_json(parity_dir() + "synthetic.json");
  GgufFile f(parity_dir() + "synthetic.gguf");
  EXPECT_EQ(f.version(), 3u);
  for (const auto& [key, entry] : ref["metadata"].items()) {
    SCOPED_TRACE(key);
    const std::string kind = entry["type"];
    const nlohmann::json& value = entry["value"];
    const GgufValue& v = f.value(key);
    if (kind.rfind("array:", 0) == 0) {
      ASSERT_EQ(v.type, GgufType::array);
      EXPECT_EQ(std::string("array:") + gguf_type_name(v.array_type), kind);
      if (kind == "array:string") {
        EXPECT_EQ(f.get_strings(key), value.get<std::vector<std::string>>());
      } else if (kind == "array:float32") {
        EXPECT_EQ(f.get_floats(key), value.get<std::vector<double>>());
      } else if (kind == "array:bool") {
        std::vector<int64_t> want;
        for (bool b : value) want.push_back(b);
        EXPECT_EQ(f.get_ints(key), want);
      } else if (kind == "array:array") {
        ASSERT_EQ(v.arrays.size(), value.size());
        for (size_t i = 0; i < v.arrays.size(); ++i) {
          EXPECT_EQ(v.arrays[i].array_type, GgufType::int32);
          EXPECT_EQ(v.arrays[i].ints, value[i].get<std::vector<int64_t>>());
        }
      } else {
        EXPECT_EQ(f.get_ints(key), value.get<std::vector<int64_t>>());
      }
      continue;
    }
    EXPECT_EQ(gguf_type_name(v.type), kind);
    if (kind == "string") {
      EXPECT_EQ(f.get_string(key), value.get<std::string>());
    } else if (kind == "bool") {
      EXPECT_EQ(f.get_bool(key), value.get<bool>());
    } else if (kind == "float32" || kind == "float64") {
      EXPECT_EQ(f.get_float(key), value.get<double>());
    } else if (kind == "uint64") {
      EXPECT_EQ(f.get_uint64(key), value.get<uint64_t>());
    } else {
      EXPECT_EQ(f.get_int(key), value.get<int64_t>());
    }
  }
  EXPECT_EQ(f.metadata().size(), ref["metadata"].size());
}

TEST(GgufParity, SyntheticTensorsOfEveryTypeDequantiseBitExact) {
  const nlohmann::json ref = read_json(parity_dir() + "synthetic.json");
  GgufFile f(parity_dir() + "synthetic.gguf");
  EXPECT_EQ(f.alignment(), ref["alignment"].get<uint64_t>());
  EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
  ASSERT_EQ(f.tensors().size(), ref["tensors"].size());
  for (const auto& [name, entry] : ref["tensors"].items()) {
    EXPECT_EQ(ggml_type_name(f.tensor_info(name).type), entry["type"].get<std::string>()) << name;
    const double diff = expect_bits_equal(f.tensor(name), read_reference(entry), name);
    std::printf("  %-12s %-5s max abs diff %g\n", name.c_str(), entry["type"].get<std::string>().c_str(), diff);
  }
}

struct SmolLM2 {
  nlohmann::json ref = read_json(parity_dir() + "smollm2.json");
  GgufFile file{ref["path"].get<std::string>()};
};

TEST(GgufParity, SmolLM2ConfigMatchesTransformers) {
  SmolLM2 m;
  const nlohmann::json& c = m.ref["config"];
  const ModelConfig cfg = gguf_model_config(m.file);
  EXPECT_EQ(cfg.architecture, c["model_type"].get<std::string>());
  EXPECT_EQ(cfg.hidden_size, c["hidden_size"].get<int64_t>());
  EXPECT_EQ(cfg.hidden_size, 576);
  EXPECT_EQ(cfg.num_hidden_layers, c["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(cfg.num_hidden_layers, 30);
  EXPECT_EQ(cfg.num_attention_heads, c["num_attention_heads"].get<int64_t>());
  EXPECT_EQ(cfg.num_attention_heads, 9);
  EXPECT_EQ(cfg.num_key_value_heads, c["num_key_value_heads"].get<int64_t>());
  EXPECT_EQ(cfg.num_key_value_heads, 3);
  EXPECT_EQ(cfg.intermediate_size, c["intermediate_size"].get<int64_t>());
  EXPECT_EQ(cfg.intermediate_size, 1536);
  EXPECT_EQ(cfg.max_position_embeddings, c["max_position_embeddings"].get<int64_t>());
  EXPECT_EQ(cfg.head_dim, c["head_dim"].get<int64_t>());
  EXPECT_EQ(cfg.rope_theta, c["rope_theta"].get<double>());
  EXPECT_EQ(cfg.rope_theta, 100000.0);
  EXPECT_EQ(cfg.rms_norm_eps, c["rms_norm_eps"].get<double>());
  EXPECT_EQ(cfg.vocab_size, c["vocab_size"].get<int64_t>());
  EXPECT_EQ(cfg.vocab_size, 49152);
  EXPECT_TRUE(cfg.tie_word_embeddings);  // no output.weight in this file
  EXPECT_FALSE(cfg.attention_bias);
  const nlohmann::json& t = m.ref["tokenizer"];
  EXPECT_EQ(cfg.bos_token_id, t["bos_token_id"].get<int64_t>());
  EXPECT_EQ(cfg.eos_token_ids, std::vector<int64_t>{t["eos_token_id"].get<int64_t>()});
  EXPECT_EQ(cfg.pad_token_id, t["pad_token_id"].get<int64_t>());
}

TEST(GgufParity, SmolLM2TokenizerDataMatchesTransformers) {
  SmolLM2 m;
  const nlohmann::json& t = m.ref["tokenizer"];
  const GgufTokenizerData tok = gguf_tokenizer_data(m.file);
  EXPECT_EQ(tok.model, t["model"].get<std::string>());
  EXPECT_EQ(tok.pre, "smollm");
  ASSERT_EQ(tok.tokens.size(), t["n_tokens"].get<size_t>());
  for (const auto& [i, s] : t["tokens_sample"].items()) EXPECT_EQ(tok.tokens.at(std::stoul(i)), s.get<std::string>());
  ASSERT_EQ(tok.merges.size(), t["n_merges"].get<size_t>());
  const auto head = t["merges_head"].get<std::vector<std::string>>();
  EXPECT_EQ(std::vector<std::string>(tok.merges.begin(), tok.merges.begin() + head.size()), head);
  ASSERT_EQ(tok.token_type.size(), tok.tokens.size());
  for (const auto& [i, v] : t["token_type_sample"].items()) EXPECT_EQ(tok.token_type.at(std::stoul(i)), v.get<int>());
  EXPECT_TRUE(tok.scores.empty());  // BPE: no scores in this file
  EXPECT_EQ(tok.bos_id, t["bos_token_id"].get<int64_t>());
  EXPECT_EQ(tok.eos_id, t["eos_token_id"].get<int64_t>());
  EXPECT_EQ(tok.unk_id, t["unk_token_id"].get<int64_t>());
  EXPECT_EQ(tok.pad_id, t["pad_token_id"].get<int64_t>());
  ASSERT_TRUE(tok.add_space_prefix.has_value());
  EXPECT_EQ(*tok.add_space_prefix, t["add_prefix_space"].get<bool>());
  ASSERT_TRUE(tok.add_bos_token.has_value());
  EXPECT_FALSE(*tok.add_bos_token);
  EXPECT_FALSE(tok.add_eos_token.has_value());
  EXPECT_EQ(tok.chat_template, t["chat_template"].get<std::string>());
}

TEST(GgufParity, SmolLM2WeightsMatchTransformersLoaderExactly) {
  SmolLM2 m;
  const ModelConfig cfg = gguf_model_config(m.file);
  const auto start = std::chrono::steady_clock::now();
  const std::map<std::string, at::Tensor> weights = gguf_hf_weights(m.file, cfg);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  SmolLM2-135M Q4_1: %zu tensors dequantised and renamed in %.3f s (%d threads)\n", weights.size(),
              seconds, at::get_num_threads());
  EXPECT_LT(seconds, 10.0) << "loading should take well under 2 s on an idle machine";
  EXPECT_EQ(weights.size(), m.ref["n_tensors"].get<size_t>());
  EXPECT_EQ(weights.count("lm_head.weight"), 0u) << "tied: lm_head must not be invented";
  for (const auto& [name, entry] : m.ref["tensors"].items()) {
    ASSERT_EQ(weights.count(name), 1u) << name;
    const double diff = expect_bits_equal(weights.at(name), read_reference(entry), name);
    std::printf("  %-48s max abs diff %g\n", name.c_str(), diff);
  }
  // The un-permutation must actually change q/k (otherwise this test could not catch its absence).
  EXPECT_FALSE(at::equal(weights.at("model.layers.0.self_attn.q_proj.weight"), m.file.tensor("blk.0.attn_q.weight")));
  EXPECT_FALSE(at::equal(weights.at("model.layers.0.self_attn.k_proj.weight"), m.file.tensor("blk.0.attn_k.weight")));
  EXPECT_TRUE(at::equal(weights.at("model.layers.0.self_attn.v_proj.weight"), m.file.tensor("blk.0.attn_v.weight")));
}

}  // namespace
}  // namespace kmoe
