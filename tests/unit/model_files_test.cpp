#include "data/model_files.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/safetensors.h"
#include "model/llama.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

using nlohmann::json;

// SmolLM2's chat template, as its tokenizer_config.json ships it.
const char* kChatmlTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}

// A tiny HF folder: tied LLaMA with vocab `model_vocab`, a byte-level tokenizer.json with
// 256 byte tokens plus <|im_start|> (256) and <|im_end|> (257), and SmolLM2's template.
void write_tiny_hf_model(const std::string& dir, int64_t model_vocab) {
  const int64_t h = 16, inter = 32, layers = 2;
  json config = {{"architectures", {"LlamaForCausalLM"}},
                 {"model_type", "llama"},
                 {"vocab_size", model_vocab},
                 {"hidden_size", h},
                 {"intermediate_size", inter},
                 {"num_hidden_layers", layers},
                 {"num_attention_heads", 2},
                 {"num_key_value_heads", 1},
                 {"rms_norm_eps", 1e-5},
                 {"tie_word_embeddings", true},
                 {"bos_token_id", 1},
                 {"eos_token_id", 2}};
  std::ofstream(dir + "/config.json") << config.dump();
  torch::manual_seed(0);
  std::map<std::string, at::Tensor> w;
  w["model.embed_tokens.weight"] = torch::randn({model_vocab, h});
  w["model.norm.weight"] = torch::ones({h});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w[p + "input_layernorm.weight"] = torch::ones({h});
    w[p + "post_attention_layernorm.weight"] = torch::ones({h});
    w[p + "self_attn.q_proj.weight"] = torch::randn({h, h}) * 0.1;
    w[p + "self_attn.k_proj.weight"] = torch::randn({h / 2, h}) * 0.1;
    w[p + "self_attn.v_proj.weight"] = torch::randn({h / 2, h}) * 0.1;
    w[p + "self_attn.o_proj.weight"] = torch::randn({h, h}) * 0.1;
    w[p + "mlp.gate_proj.weight"] = torch::randn({inter, h}) * 0.1;
    w[p + "mlp.up_proj.weight"] = torch::randn({inter, h}) * 0.1;
    w[p + "mlp.down_proj.weight"] = torch::randn({h, inter}) * 0.1;
  }
  safetensors_write(dir + "/model.safetensors", w);

  json vocab = json::object();
  for (uint32_t b = 0, extra = 0; b < 256; ++b) {  // GPT-2's printable form of each byte
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? b : 256 + extra++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  json tok;
  tok["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}};
  tok["added_tokens"] = json::array({{{"id", 256}, {"content", "<|im_start|>"}, {"special", true}},
                                     {{"id", 257}, {"content", "<|im_end|>"}, {"special", true}}});
  tok["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
  std::ofstream(dir + "/tokenizer_config.json") << json{{"chat_template", kChatmlTemplate}}.dump();
}

TEST(ModelFiles, HfFolderGivesConfigWeightsTokenizerAndChatFormat) {
  testing::TempDir dir;
  write_tiny_hf_model(dir.path.string(), 300);
  ModelFiles m = model_files_load(dir.path.string());
  EXPECT_EQ(m.format, "hf");
  EXPECT_EQ(m.config.hidden_size, 16);
  EXPECT_EQ(m.tokenizer->vocab_size(), 258);
  ASSERT_TRUE(m.chat_template.has_value());
  EXPECT_EQ(m.chat_template->format, ChatFormat::chatml);
  EXPECT_EQ(m.stop_token_ids, (std::vector<int64_t>{2, 257}));  // config EOS and <|im_end|>
  const std::string prompt = chat_render(*m.chat_template, {{"user", "hi"}}, true);
  const auto ids = m.tokenizer->encode(prompt, false);
  EXPECT_EQ(ids.front(), 256);  // <|im_start|> matched as one token
  const LlamaModel model = llama_from_weights(m.config, std::move(m.weights), torch::kCPU, torch::kFloat32);
  const auto logits =
      llama_forward(model, torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0), {});
  EXPECT_EQ(logits.size(2), 300);
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

TEST(ModelFiles, UnknownChatTemplateMeansNoChatFormat) {
  testing::TempDir dir;
  write_tiny_hf_model(dir.path.string(), 300);
  std::ofstream(dir / "tokenizer_config.json") << json{{"chat_template", "{{ messages | tojson }}"}}.dump();
  const ModelFiles m = model_files_load(dir.path.string());
  EXPECT_FALSE(m.chat_template.has_value());
  EXPECT_EQ(m.stop_token_ids, (std::vector<int64_t>{2}));
}

TEST(ModelFiles, BadInputsNameThePath) {
  testing::TempDir dir;
  EXPECT_NE(error_of([&] { model_files_load(dir / "nope"); }).find("nope: model not found"), std::string::npos);
  std::ofstream(dir / "model.bin") << "this is not a gguf file";
  EXPECT_NE(error_of([&] { model_files_load(dir / "model.bin"); }).find("model.bin"), std::string::npos);

  write_tiny_hf_model(dir.path.string(), 200);  // the tokenizer has 258 tokens
  EXPECT_NE(
      error_of([&] { model_files_load(dir.path.string()); }).find("tokenizer has 258 tokens but the model only 200"),
      std::string::npos);

  std::filesystem::remove(dir / "tokenizer.json");
  write_tiny_hf_model(dir.path.string(), 300);
  std::filesystem::remove(dir / "tokenizer.json");
  EXPECT_NE(error_of([&] { model_files_load(dir.path.string()); }).find(dir.path.string()), std::string::npos);
  write_tiny_hf_model(dir.path.string(), 300);
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  EXPECT_NE(error_of([&] { model_files_load(dir.path.string()); }).find("tokenizer_config.json: not valid JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace kmoe
