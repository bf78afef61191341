// See model_files.h. The GGUF tokenizer is rebuilt from the file's vocabulary arrays with
// the same classes that read tokenizer.json / tokenizer.model, so a GGUF and the HF folder
// it was converted from tokenize identically.
#include "data/formats/model_files.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/formats/gguf.h"
#include "data/formats/hf_checkpoint.h"
#include "data/text/json_file.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/sentencepiece_tokenizer.h"

namespace kmoe {

namespace {

// The model's template, parsed and tried once on a one-turn conversation: a template kmoe's
// Jinja interpreter refuses leaves chat prompts unavailable, and `why` says what it refused.
std::optional<ChatTemplate> chat_template_from(const std::string& jinja, const std::string& bos, const std::string& eos,
                                               std::string& why) {
  if (jinja.empty()) return std::nullopt;
  try {
    ChatTemplate t = chat_template_make(jinja, bos, eos);
    chat_render(t, {{"user", "Hi"}}, /*add_generation_prompt=*/true);
    return t;
  } catch (const std::exception& e) {
    why = e.what();
    return std::nullopt;
  }
}

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufTokenizerData& t, const std::string& path) {
  if (t.model == "gpt2") {
    BpeVocab v;
    v.tokens = t.tokens;
    v.merges = t.merges;
    v.token_types = t.token_type;
    v.pre = t.pre.empty() ? "default" : t.pre;
    v.bos_id = static_cast<int32_t>(t.bos_id);
    v.eos_id = static_cast<int32_t>(t.eos_id);
    v.unk_id = static_cast<int32_t>(t.unk_id);
    v.pad_id = static_cast<int32_t>(t.pad_id);
    v.add_bos = t.add_bos_token.value_or(false);
    return std::make_unique<BpeTokenizer>(v, path);
  }
  if (t.model == "llama") {
    SentencePieceModel m;
    m.model_type = 2;  // llama.cpp's "llama" vocab is SentencePiece BPE
    m.byte_fallback = true;
    m.remove_extra_whitespaces = false;
    m.add_dummy_prefix = t.add_space_prefix.value_or(true);
    for (size_t i = 0; i < t.tokens.size(); ++i) {
      SentencePiece p;
      p.piece = t.tokens[i];
      p.score = i < t.scores.size() ? t.scores[i] : 0.0f;
      p.type = i < t.token_type.size() ? static_cast<SentencePieceType>(t.token_type[i]) : SentencePieceType::normal;
      m.pieces.push_back(std::move(p));
    }
    if (t.unk_id >= 0) m.unk_id = static_cast<int32_t>(t.unk_id);
    if (t.bos_id >= 0) m.bos_id = static_cast<int32_t>(t.bos_id);
    if (t.eos_id >= 0) m.eos_id = static_cast<int32_t>(t.eos_id);
    m.pad_id = static_cast<int32_t>(t.pad_id);
    return std::make_unique<SentencePieceTokenizer>(std::move(m), path, t.add_bos_token.value_or(true),
                                                    t.add_eos_token.value_or(false));
  }
  throw std::runtime_error(path + ": tokenizer.ggml.model '" + t.model + "' is not supported (gpt2, llama)");
}

// A special token as tokenizer_config.json / special_tokens_map.json write it: a string, an
// AddedToken object {"content": ...}, or null.
std::string special_token_text(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return "";
  const auto& t = j[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return "";
}

struct HfChatTemplate {
  std::string jinja, bos, eos;
};

// tokenizer_config.json's chat_template and BOS/EOS text (special_tokens_map.json's where
// tokenizer_config.json has none).
HfChatTemplate hf_chat_template(const std::string& dir) {
  HfChatTemplate out;
  const auto path = std::filesystem::path(dir) / "tokenizer_config.json";
  if (std::filesystem::exists(path)) {
    const nlohmann::json j = json_file_read(path.string());
    if (j.contains("chat_template")) {
      const auto& t = j["chat_template"];
      if (t.is_string()) {
        out.jinja = t.get<std::string>();
      } else if (t.is_array()) {  // [{name, template}, ...]: the "default" one
        for (const auto& e : t) {
          if (e.value("name", "") == "default") out.jinja = e.value("template", "");
        }
      }
    }
    out.bos = special_token_text(j, "bos_token");
    out.eos = special_token_text(j, "eos_token");
  }
  const auto map_path = std::filesystem::path(dir) / "special_tokens_map.json";
  if ((out.bos.empty() || out.eos.empty()) && std::filesystem::exists(map_path)) {
    const nlohmann::json j = json_file_read(map_path.string());
    if (out.bos.empty()) out.bos = special_token_text(j, "bos_token");
    if (out.eos.empty()) out.eos = special_token_text(j, "eos_token");
  }
  return out;
}

// The vocabulary entry at `id`, "" when there is none.
std::string gguf_token_text(const GgufTokenizerData& t, int64_t id) {
  return id >= 0 && id < static_cast<int64_t>(t.tokens.size()) ? t.tokens[static_cast<size_t>(id)] : "";
}

void add_stop_ids(ModelFiles& m) {
  for (int64_t id : m.config.eos_token_ids) m.stop_token_ids.push_back(id);
  if (m.tokenizer->eos_id >= 0) m.stop_token_ids.push_back(m.tokenizer->eos_id);
  if (m.chat_template) {
    // The template's end-of-turn tokens: generation of an assistant reply ends there.
    for (const std::string& end : chat_turn_end_tokens(*m.chat_template)) {
      const int32_t id = m.tokenizer->token_to_id(end);
      if (id >= 0) m.stop_token_ids.push_back(id);
    }
  }
  std::sort(m.stop_token_ids.begin(), m.stop_token_ids.end());
  m.stop_token_ids.erase(std::unique(m.stop_token_ids.begin(), m.stop_token_ids.end()), m.stop_token_ids.end());
}

}  // namespace

ModelFiles model_files_load(const std::string& path) {
  namespace fs = std::filesystem;
  ModelFiles m;
  m.path = path;
  if (!fs::exists(path)) throw std::runtime_error(path + ": model not found");
  if (fs::is_regular_file(path)) {
    const GgufFile gguf(path);  // throws naming the file if it is not GGUF
    m.format = "gguf";
    m.config = gguf_model_config(gguf);
    m.weights = gguf_hf_weights(gguf, m.config);
    const GgufTokenizerData t = gguf_tokenizer_data(gguf);
    m.tokenizer = tokenizer_from_gguf(t, path);
    m.chat_template = chat_template_from(t.chat_template, gguf_token_text(t, t.bos_id), gguf_token_text(t, t.eos_id),
                                         m.chat_template_error);
  } else {
    m.format = "hf";
    m.config = hf_config_load(path);
    m.weights = hf_weights_load(path);
    m.tokenizer = tokenizer_load(path);
    const HfChatTemplate chat = hf_chat_template(path);
    m.chat_template = chat_template_from(chat.jinja, chat.bos, chat.eos, m.chat_template_error);
  }
  if (m.tokenizer->vocab_size() > m.config.vocab_size) {
    throw std::runtime_error(path + ": the tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                             " tokens but the model only " + std::to_string(m.config.vocab_size));
  }
  add_stop_ids(m);
  // A NaN or inf weight would be scored, ranked and trained on silently.
  for (const auto& [name, t] : m.weights) {
    if (t.is_floating_point() && !at::isfinite(t).all().item<bool>())
      throw std::runtime_error(path + ": tensor '" + name + "' holds non-finite values (NaN or inf)");
  }
  return m;
}

const ChatTemplate& model_chat_template(const ModelFiles& files) {
  if (files.chat_template) return *files.chat_template;
  throw std::invalid_argument(files.path + ": --prompt-format chat, but " +
                              (files.chat_template_error.empty()
                                   ? "the model has no chat template"
                                   : "its chat template cannot be rendered: " + files.chat_template_error));
}

}  // namespace kmoe
