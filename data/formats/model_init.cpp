// See model_init.h. The weights come from a torch::Generator seeded with the options' seed,
// drawn in a fixed tensor order, so the same options give the same bytes. The ChatML template
// inserts no system turn of its own: prompts stay short, and a byte-level model pays per
// character.
#include "data/formats/model_init.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include "data/store/folder_commit.h"
#include "data/formats/safetensors.h"
#include "data/tokenizers/tokenizer.h"

namespace kmoe {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kChatTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

json options_json(const ModelInitOptions& o) {
  return {{"hidden", o.hidden},
          {"layers", o.layers},
          {"heads", o.heads},
          {"kv_heads", o.kv_heads},
          {"intermediate", o.intermediate},
          {"max_position", o.max_position},
          {"init_std", o.init_std},
          {"seed", o.seed}};
}

// GPT-2's printable spelling of byte b (bytes_to_unicode).
std::string byte_token(uint32_t b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  uint32_t cp = b;
  if (!printable) {
    uint32_t n = 0;  // the rank of b among the non-printable bytes
    for (uint32_t x = 0; x < b; ++x)
      n += !((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF));
    cp = 256 + n;
  }
  std::string s;
  utf8_append(s, cp);
  return s;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(path.string() + ": write failed");
}

}  // namespace

void model_init_validate(const ModelInitOptions& o) {
  const auto positive = [](int64_t v, const char* name) {
    if (v < 1) throw std::invalid_argument(std::string("--").append(name).append(" must be >= 1"));
  };
  positive(o.hidden, "hidden");
  positive(o.layers, "layers");
  positive(o.heads, "heads");
  positive(o.kv_heads, "kv-heads");
  positive(o.intermediate, "intermediate");
  positive(o.max_position, "max-position");
  if (o.hidden % o.heads != 0)
    throw std::invalid_argument("--hidden " + std::to_string(o.hidden) + " is not divisible by --heads " +
                                std::to_string(o.heads));
  if ((o.hidden / o.heads) % 2 != 0)
    throw std::invalid_argument("the head size --hidden / --heads = " + std::to_string(o.hidden / o.heads) +
                                " must be even (RoPE rotates pairs)");
  if (o.heads % o.kv_heads != 0)
    throw std::invalid_argument("--heads " + std::to_string(o.heads) + " is not divisible by --kv-heads " +
                                std::to_string(o.kv_heads));
  if (!(o.init_std > 0)) throw std::invalid_argument("--init-std must be > 0");
}

json model_init_config(const ModelInitOptions& o) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", kInitVocab},
          {"hidden_size", o.hidden},
          {"intermediate_size", o.intermediate},
          {"num_hidden_layers", o.layers},
          {"num_attention_heads", o.heads},
          {"num_key_value_heads", o.kv_heads},
          {"max_position_embeddings", o.max_position},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", true},
          {"bos_token_id", kInitEndOfText},
          {"eos_token_id", kInitImEnd},
          {"torch_dtype", "float32"},
          {"kmoe_init", options_json(o)}};
}

std::string model_init_tokenizer_json() {
  json vocab = json::object();
  for (uint32_t b = 0; b < 256; ++b) vocab[byte_token(b)] = b;
  const auto added = [](int32_t id, const char* content) {
    return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {added(kInitImStart, "<|im_start|>"), added(kInitImEnd, "<|im_end|>"), added(kInitEndOfText, "<|endoftext|>")}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab},
        {"merges", json::array()}}}};
  return tok.dump(1);
}

std::string model_init_tokenizer_config_json() {
  json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
              {"bos_token", "<|endoftext|>"},
              {"eos_token", "<|im_end|>"},
              {"pad_token", "<|endoftext|>"},
              {"unk_token", nullptr},
              {"add_bos_token", false},
              {"add_eos_token", false},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", 1024},
              {"chat_template", kChatTemplate}};
  return cfg.dump(1);
}

void model_init_write(const std::string& dir, const ModelInitOptions& o) {
  model_init_validate(o);
  const fs::path partial = folder_partial_path(dir);
  fs::remove_all(partial);
  fs::create_directories(partial);

  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(o.seed);
  const auto normal = [&](int64_t rows, int64_t cols, double std) {
    return at::normal(0.0, std, {rows, cols}, gen, torch::TensorOptions().dtype(torch::kFloat32));
  };
  const int64_t head = o.hidden / o.heads;
  const double out_std = o.init_std / std::sqrt(2.0 * static_cast<double>(o.layers));
  std::map<std::string, at::Tensor> w;
  w["model.embed_tokens.weight"] = normal(kInitVocab, o.hidden, o.init_std);
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w[p + "input_layernorm.weight"] = torch::ones({o.hidden});
    w[p + "post_attention_layernorm.weight"] = torch::ones({o.hidden});
    w[p + "self_attn.q_proj.weight"] = normal(o.heads * head, o.hidden, o.init_std);
    w[p + "self_attn.k_proj.weight"] = normal(o.kv_heads * head, o.hidden, o.init_std);
    w[p + "self_attn.v_proj.weight"] = normal(o.kv_heads * head, o.hidden, o.init_std);
    w[p + "self_attn.o_proj.weight"] = normal(o.hidden, o.heads * head, out_std);
    w[p + "mlp.gate_proj.weight"] = normal(o.intermediate, o.hidden, o.init_std);
    w[p + "mlp.up_proj.weight"] = normal(o.intermediate, o.hidden, o.init_std);
    w[p + "mlp.down_proj.weight"] = normal(o.hidden, o.intermediate, out_std);
  }
  w["model.norm.weight"] = torch::ones({o.hidden});
  safetensors_write((partial / "model.safetensors").string(), w, {{"format", "pt"}});  // HF expects format=pt

  write_text(partial / "config.json", model_init_config(o).dump(1));
  write_text(partial / "tokenizer.json", model_init_tokenizer_json());
  write_text(partial / "tokenizer_config.json", model_init_tokenizer_config_json());
  write_text(partial / "generation_config.json",
             json{{"bos_token_id", kInitEndOfText}, {"eos_token_id", kInitImEnd}}.dump(1));
  folder_commit(partial.string(), dir);
}

bool model_init_matches(const std::string& dir, const ModelInitOptions& o) {
  const fs::path d(dir);
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    if (!fs::exists(d / name)) return false;
  std::ifstream in(d / "config.json");
  const json cfg = json::parse(in, nullptr, false);
  return !cfg.is_discarded() && cfg.contains("kmoe_init") && cfg["kmoe_init"] == options_json(o);
}

}  // namespace kmoe
