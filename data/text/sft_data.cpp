// See sft_data.h. Records are read by data/text/jsonl.h so that every error names
// FILE:LINE; a K-shot record goes through kshot_record_parse so that its checks (choices,
// answer letter) are the ones scoring applies.
#include "data/text/sft_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <stdexcept>

#include "data/text/jsonl.h"
#include "data/text/kshot.h"

namespace kmoe {

namespace {

std::string record_string(const nlohmann::json& obj, const char* key, const std::string& where) {
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
      chat.push_back({record_string(m, "role", where), record_string(m, "content", where)});
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
    out.response = record_string(obj, "text", where);
    if (out.response.empty()) throw std::invalid_argument(where + ": empty text");
    out.plain = true;
    return out;
  }
  if (obj.contains("output")) {  // open Alpaca: instruction, optional input, output
    KshotExample ex;
    ex.instruction = record_string(obj, "instruction", where);
    ex.input = record_string(obj, "input", where);
    out.response = record_string(obj, "output", where);
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

SftSource sft_source_parse(const std::string& arg) {
  std::error_code ec;
  const size_t colon = arg.rfind(':');
  if (colon == std::string::npos || std::filesystem::exists(arg, ec)) return {arg, 1.0};
  const std::string path = arg.substr(0, colon), f = arg.substr(colon + 1);
  static const std::regex number(R"(([0-9]+(\.[0-9]*)?|\.[0-9]+)(/([0-9]+))?)");
  std::smatch m;
  if (path.empty() || !std::regex_match(f, m, number))
    throw std::invalid_argument("--data " + arg + ": expected FILE or FILE:FRACTION (a/b or a decimal in (0, 1])");
  double value = std::stod(m[1].str());
  if (m[4].matched) {
    const double den = std::stod(m[4].str());
    value = den > 0 ? value / den : 0;
  }
  if (!(value > 0 && value <= 1))
    throw std::invalid_argument("--data " + arg + ": the fraction " + f + " is not in (0, 1]");
  return {path, value};
}

std::vector<SftExample> sft_sample_sources(std::vector<SftExample> all, const std::vector<double>& fractions,
                                           uint64_t seed, std::vector<int64_t>* kept) {
  std::vector<std::vector<size_t>> members(fractions.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const auto s = static_cast<size_t>(all[i].source);
    if (s >= fractions.size()) throw std::invalid_argument("sft_sample_sources: an example of an unknown source");
    members[s].push_back(i);
  }
  std::vector<char> keep(all.size(), 0);
  if (kept) kept->assign(fractions.size(), 0);
  for (size_t s = 0; s < fractions.size(); ++s) {
    auto& m = members[s];
    const auto n = static_cast<int64_t>(m.size());
    int64_t k = n;
    if (fractions[s] < 1 && n > 0) {
      k = std::clamp<int64_t>(std::llround(fractions[s] * static_cast<double>(n)), 1, n);
      std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + s + 1);
      for (int64_t i = 0; i < k; ++i) {  // a partial Fisher-Yates shuffle: m[0, k) is the draw
        std::uniform_int_distribution<int64_t> pick(i, n - 1);
        std::swap(m[i], m[pick(rng)]);
      }
    }
    for (int64_t i = 0; i < k; ++i) keep[m[i]] = 1;
    if (kept) (*kept)[s] = k;
  }
  std::vector<SftExample> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (keep[i]) out.push_back(std::move(all[i]));
  }
  return out;
}

}  // namespace kmoe
