// See hf_checkpoint.h. Defaults for keys a config.json may omit are those of transformers'
// LlamaConfig / MistralConfig / Qwen2Config; a key that is present with the wrong type is an
// error, never silently defaulted.
#include "data/formats/hf_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/formats/safetensors.h"
#include "data/text/json_file.h"

namespace kmoe {
namespace {

struct ConfigReader {
  const std::string& path;
  const nlohmann::json& j;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw std::runtime_error(path + ": key '" + key + "': " + what);
  }
  bool present(const std::string& key) const { return j.contains(key) && !j[key].is_null(); }
  int64_t integer(const std::string& key) const {
    if (!present(key)) fail(key, "missing");
    if (!j[key].is_number_integer()) fail(key, "expected an integer, got " + j[key].dump());
    return j[key].get<int64_t>();
  }
  int64_t integer(const std::string& key, int64_t fallback) const { return present(key) ? integer(key) : fallback; }
  double number(const std::string& key, double fallback) const {
    if (!present(key)) return fallback;
    if (!j[key].is_number()) fail(key, "expected a number, got " + j[key].dump());
    return j[key].get<double>();
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!present(key)) return fallback;
    if (!j[key].is_boolean()) fail(key, "expected true or false, got " + j[key].dump());
    return j[key].get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) const {
    if (!present(key)) return fallback;
    if (!j[key].is_string()) fail(key, "expected a string, got " + j[key].dump());
    return j[key].get<std::string>();
  }
};

std::string architecture_of(const ConfigReader& r) {
  const std::string model_type = r.string("model_type", "");
  if (model_type == "llama" || model_type == "mistral" || model_type == "qwen2") return model_type;
  if (!model_type.empty()) r.fail("model_type", "'" + model_type + "' is not supported (llama, mistral, qwen2)");
  if (r.present("architectures") && r.j["architectures"].is_array() && !r.j["architectures"].empty() &&
      r.j["architectures"][0].is_string()) {
    const std::string arch = r.j["architectures"][0].get<std::string>();
    if (arch == "LlamaForCausalLM") return "llama";
    if (arch == "MistralForCausalLM") return "mistral";
    if (arch == "Qwen2ForCausalLM") return "qwen2";
    r.fail("architectures", "'" + arch + "' is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
  }
  r.fail("model_type", "missing (and no 'architectures' to tell the model family)");
}

}  // namespace

ModelConfig hf_config_load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  const nlohmann::json j = json_file_read(path);
  if (!j.is_object()) throw std::runtime_error(path + ": not a JSON object");
  const ConfigReader r{path, j};

  ModelConfig c;
  c.architecture = architecture_of(r);
  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads"}) {
    if (r.integer(key, 1) <= 0) r.fail(key, "must be positive");
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    r.fail("num_key_value_heads", std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
                                      std::to_string(c.num_attention_heads));
  }
  if (r.present("head_dim")) {
    c.head_dim = r.integer("head_dim");
    if (c.head_dim <= 0 || c.head_dim % 2 != 0) r.fail("head_dim", "must be positive and even");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      r.fail("hidden_size", "not divisible by num_attention_heads and no head_dim given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.max_position_embeddings = r.integer("max_position_embeddings", c.max_position_embeddings);
  c.rms_norm_eps = r.number("rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = r.number("rope_theta", c.rope_theta);
  const std::string act = r.string("hidden_act", "silu");
  if (act != "silu") r.fail("hidden_act", "'" + act + "' is not supported (silu)");
  if (r.boolean("mlp_bias", false)) r.fail("mlp_bias", "true is not supported");
  // Qwen2 has q/k/v biases whatever the config says; LLaMA/Mistral have them (and o_proj's)
  // only with attention_bias.
  c.attention_bias = c.architecture == "qwen2" ? true : r.boolean("attention_bias", false);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);

  if (r.present("rope_scaling")) {
    const auto& rs = j["rope_scaling"];
    if (!rs.is_object()) r.fail("rope_scaling", "expected an object or null");
    const ConfigReader s{path, rs};
    const std::string type = s.string("rope_type", s.string("type", "default"));
    if (type == "llama3") {
      c.rope_scaling.type = "llama3";
      c.rope_scaling.factor = s.number("factor", 0.0);
      c.rope_scaling.low_freq_factor = s.number("low_freq_factor", 0.0);
      c.rope_scaling.high_freq_factor = s.number("high_freq_factor", 0.0);
      c.rope_scaling.original_max_position_embeddings = s.integer("original_max_position_embeddings", 0);
      if (c.rope_scaling.factor <= 0) r.fail("rope_scaling.factor", "missing or not positive");
      if (c.rope_scaling.low_freq_factor <= 0) r.fail("rope_scaling.low_freq_factor", "missing or not positive");
      if (c.rope_scaling.high_freq_factor <= c.rope_scaling.low_freq_factor) {
        r.fail("rope_scaling.high_freq_factor", "missing or not above low_freq_factor");
      }
      if (c.rope_scaling.original_max_position_embeddings <= 0) {
        r.fail("rope_scaling.original_max_position_embeddings", "missing or not positive");
      }
    } else if (type != "default") {
      r.fail("rope_scaling", "rope_type '" + type + "' is not supported (llama3 or none)");
    }
  }

  c.bos_token_id = r.integer("bos_token_id", -1);
  c.pad_token_id = r.integer("pad_token_id", -1);
  if (r.present("eos_token_id")) {
    const auto& eos = j["eos_token_id"];
    if (eos.is_number_integer()) {
      c.eos_token_ids = {eos.get<int64_t>()};
    } else if (eos.is_array()) {
      for (const auto& e : eos) {
        if (!e.is_number_integer()) r.fail("eos_token_id", "list holds a non-integer " + e.dump());
        c.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else {
      r.fail("eos_token_id", "expected an integer or a list of integers, got " + eos.dump());
    }
  }
  return c;
}

std::map<std::string, at::Tensor> hf_weights_load(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  const std::string single = (dir / "model.safetensors").string();
  const std::string index = (dir / "model.safetensors.index.json").string();
  std::map<std::string, at::Tensor> weights;
  const auto widen = [](at::Tensor t) { return t.is_floating_point() ? t.to(torch::kFloat32) : t; };

  if (std::filesystem::exists(single)) {
    SafetensorsFile f(single);
    for (const auto& [name, entry] : f.entries()) weights[name] = widen(f.tensor(name));
    return weights;
  }
  if (!std::filesystem::exists(index)) {
    for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
      if (std::filesystem::exists(dir / pickle)) {
        throw std::runtime_error(
            model_dir + ": has " + pickle +
            " (PyTorch pickle), which kmoe does not read (unpickling runs code); convert it once with "
            "transformers: AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, "
            "safe_serialization=True), which writes model.safetensors");
      }
    }
    throw std::runtime_error(model_dir + ": neither model.safetensors nor model.safetensors.index.json found");
  }
  const nlohmann::json j = json_file_read(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    throw std::runtime_error(index + ": no 'weight_map' object");
  }
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) throw std::runtime_error(index + ": weight_map entry '" + name + "' is not a file name");
    by_shard[shard.get<std::string>()].push_back(name);
  }
  for (const auto& [shard, names] : by_shard) {
    const std::string shard_path = (dir / shard).string();
    if (!std::filesystem::exists(shard_path)) {
      throw std::runtime_error(index + ": shard '" + shard + "' (listed for '" + names.front() +
                               "') does not exist in " + model_dir);
    }
    SafetensorsFile f(shard_path);
    for (const auto& name : names) {
      if (!f.has(name))
        throw std::runtime_error(index + ": lists tensor '" + name + "' in shard '" + shard + "', which lacks it");
      weights[name] = widen(f.tensor(name));
    }
  }
  return weights;
}

}  // namespace kmoe
