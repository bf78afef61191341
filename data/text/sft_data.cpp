// See sft_data.h. Records are read by data/text/jsonl.h so that every error names
// FILE:LINE; a K-shot record goes through kshot_record_parse so that its checks (choices,
// answer letter) are the ones scoring applies.
#include "data/text/sft_data.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/text/jsonl.h"
#include "data/text/kshot.h"

namespace kmoe {

namespace {

std::string string_field(const nlohmann::json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  if (!it->is_string()) throw std::invalid_argument(where + ": field '" + key + "' must be a string");
  return it->get<std::string>();
}

std::vector<int64_t> encode(const Tokenizer& tok, const std::string& text, bool add_special) {
  const auto ids = tok.encode(text, add_special);
  return {ids.begin(), ids.end()};
}

struct PromptResponse {
  std::string prompt, response;
  bool plain = false;  // a `text` record: the loss on every token
};

PromptResponse record_texts(const nlohmann::json& obj, int64_t line, const std::string& where,
                            const SftDataOptions& options) {
  PromptResponse out;
  if (obj.contains("messages")) {
    const auto& msgs = obj["messages"];
    if (!msgs.is_array() || msgs.empty()) throw std::invalid_argument(where + ": messages must be a non-empty list");
    std::vector<ChatMessage> chat;
    for (const auto& m : msgs) {
      if (!m.is_object()) throw std::invalid_argument(where + ": every message must be an object");
      chat.push_back({string_field(m, "role", where), string_field(m, "content", where)});
    }
    int64_t last = -1;
    for (size_t i = 0; i < chat.size(); ++i) {
      if (chat[i].role == "assistant") last = static_cast<int64_t>(i);
    }
    if (last < 0) throw std::invalid_argument(where + ": no assistant message to train on");
    if (chat[last].content.empty()) throw std::invalid_argument(where + ": the last assistant message is empty");
    const auto& tmpl = options.prompt.style == PromptStyle::chat ? options.prompt.chat : options.chat_for_messages;
    if (!tmpl) throw std::invalid_argument(where + ": a messages record needs a chat template the model lacks");
    try {
      out.prompt = chat_render(*tmpl, {chat.begin(), chat.begin() + last}, /*add_generation_prompt=*/true);
    } catch (const std::exception& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    out.response = chat[last].content;
    return out;
  }
  if (obj.contains("text")) {
    out.response = string_field(obj, "text", where);
    if (out.response.empty()) throw std::invalid_argument(where + ": empty text");
    out.plain = true;
    return out;
  }
  if (obj.contains("output")) {  // open Alpaca: instruction, optional input, output
    KshotExample ex;
    ex.instruction = string_field(obj, "instruction", where);
    ex.input = string_field(obj, "input", where);
    out.response = string_field(obj, "output", where);
    if (ex.instruction.empty() || out.response.empty())
      throw std::invalid_argument(where + ": an Alpaca record needs a non-empty instruction and output");
    out.prompt = prompt_render(options.prompt, ex);
    return out;
  }
  if (obj.contains("answer")) {  // K-shot
    const KshotExample ex = kshot_record_parse(obj, line, where);
    out.prompt = prompt_render(options.prompt, ex);
    out.response = prompt_reasoning_target(options.prompt, ex);
    return out;
  }
  throw std::invalid_argument(where +
                              ": not a training record (expected messages, text, instruction/output or "
                              "question/answer fields)");
}

}  // namespace

int64_t sft_eos_id(const Tokenizer& tokenizer, const std::vector<int64_t>& config_eos_ids, const PromptFormat& prompt) {
  if (prompt.style == PromptStyle::chat && prompt.chat) {
    for (const std::string& end : chat_turn_end_tokens(*prompt.chat)) {
      const int32_t id = tokenizer.token_to_id(end);
      if (id >= 0) return id;
    }
  }
  if (tokenizer.eos_id >= 0) return tokenizer.eos_id;
  if (!config_eos_ids.empty()) return config_eos_ids.front();
  throw std::invalid_argument("the model has no end-of-sequence token (tokenizer or config.json eos_token_id)");
}

std::vector<SftExample> sft_load(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                                 const SftDataOptions& options, SftDataStats* stats) {
  if (options.eos_id < 0) throw std::invalid_argument("sft_load: no EOS id");
  if (options.max_len < 2) throw std::invalid_argument("--max-len must be at least 2");
  SftDataStats s;
  std::vector<SftExample> out;
  const bool bos = options.prompt.style == PromptStyle::alpaca;  // chat templates carry their BOS text
  for (size_t source = 0; source < files.size(); ++source) {
    const std::string& path = files[source];
    jsonl_read(path, "a data file (JSONL)", [&](int64_t line, const nlohmann::json& obj) {
      const std::string where = jsonl_where(path, line);
      const PromptResponse pr = record_texts(obj, line, where, options);
      ++s.records;
      SftExample ex;
      ex.where = where;
      ex.source = static_cast<int64_t>(source);
      if (pr.plain) {
        ex.tokens = encode(tokenizer, pr.response, /*add_special=*/true);
        ex.tokens.push_back(options.eos_id);
        ex.n_prompt = 1;  // the first token has nothing to be predicted from
      } else {
        ex.tokens = encode(tokenizer, pr.prompt, bos);
        ex.n_prompt = static_cast<int64_t>(ex.tokens.size());
        const auto response = encode(tokenizer, pr.response, false);
        ex.tokens.insert(ex.tokens.end(), response.begin(), response.end());
        ex.tokens.push_back(options.eos_id);
      }
      if (ex.n_prompt < 1) throw std::invalid_argument(where + ": the prompt encodes to no token");
      if (ex.n_prompt >= options.max_len) {
        ++s.dropped;
        return;
      }
      if (static_cast<int64_t>(ex.tokens.size()) > options.max_len) {
        ex.tokens.resize(options.max_len);
        ++s.truncated;
      }
      out.push_back(std::move(ex));
    });
  }
  if (stats) *stats = s;
  return out;
}

}  // namespace kmoe
