// kmoe's tokenizers and chat templates against HF tokenizers / sentencepiece / transformers
// (tokenizer_reference.py): identical ids for every test string and tokenizer, identical
// decodes, and identical chat-template renders (kmoe's Jinja interpreter against jinja2 inside
// transformers' apply_chat_template, real models' templates, throwing where they raise).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/chat_template.h"
#include "data/tokenizers/sentencepiece_tokenizer.h"
#include "data/tokenizers/tokenizer.h"

namespace kmoe {
namespace {

using nlohmann::json;

std::string reference_dir() {
  const char* dir = std::getenv("KMOE_PARITY_DIR");
  if (!dir) throw std::runtime_error("KMOE_PARITY_DIR is not set (run through ctest)");
  return std::string(dir) + "/tokenizer/";
}

const json& expected() {
  static const json j = [] {
    std::ifstream in(reference_dir() + "expected.json");
    if (!in) throw std::runtime_error(reference_dir() + "expected.json missing: run tokenizer_reference.py");
    return json::parse(in);
  }();
  return j;
}

std::vector<int32_t> ids_of(const json& j) {
  return j.get<std::vector<int32_t>>();
}

std::string show(const std::string& s) {
  return json(s).dump();
}

// Ids (with and without special tokens where the reference has them) and decodes for every string.
void expect_parity(const Tokenizer& tok, const std::string& name, bool sentencepiece) {
  const json& strings = expected().at("strings");
  const json& ref = expected().at("tokenizers").at(name);
  int ids_ok = 0, decode_ok = 0, roundtrip_ok = 0, roundtrip_expected = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i].get<std::string>();
    const auto ids = tok.encode(s, false);
    const auto want = ids_of(ref.at("ids_no_special")[i]);
    ids_ok += ids == want;
    EXPECT_EQ(ids, want) << name << " string " << i << " " << show(s);
    if (ref.contains("ids")) {
      EXPECT_EQ(tok.encode(s, true), ids_of(ref.at("ids")[i])) << name << " with special, string " << i;
    }
    const std::string decoded = tok.decode(want, sentencepiece);
    const std::string want_decoded = ref.at("decoded")[i].get<std::string>();
    decode_ok += decoded == want_decoded;
    EXPECT_EQ(decoded, want_decoded) << name << " decode of string " << i << " " << show(s);
    if (ref.contains("decoded_skip_special")) {
      EXPECT_EQ(tok.decode(want, true), ref.at("decoded_skip_special")[i].get<std::string>()) << name << " " << i;
    }
    if (want_decoded == s) {  // where the reference round-trips, kmoe must too
      ++roundtrip_expected;
      roundtrip_ok += tok.decode(ids, sentencepiece) == s;
      EXPECT_EQ(tok.decode(ids, sentencepiece), s) << name << " round trip of string " << i;
    }
  }
  std::printf("[parity] %-16s ids %d/%zu, decode %d/%zu, round trip %d/%d\n", name.c_str(), ids_ok, strings.size(),
              decode_ok, strings.size(), roundtrip_ok, roundtrip_expected);
  EXPECT_GE(strings.size(), 200u);
}

TEST(TokenizerParity, SmolLMDigitsByteLevelMatchesHF) {
  const auto tok = tokenizer_load(reference_dir() + "smollm.json");
  expect_parity(*tok, "smollm", false);
}

TEST(TokenizerParity, Gpt2RegexMatchesHF) {
  const auto tok = tokenizer_load(reference_dir() + "gpt2.json");
  expect_parity(*tok, "gpt2", false);
}

TEST(TokenizerParity, Gpt2PrefixSpaceMatchesHF) {
  const auto tok = tokenizer_load(reference_dir() + "gpt2_prefix.json");
  expect_parity(*tok, "gpt2_prefix", false);
}

TEST(TokenizerParity, Llama3SplitRegexAndBosMatchHF) {
  const auto tok = tokenizer_load(reference_dir() + "llama3.json");
  EXPECT_EQ(tok->bos_id, 1);
  expect_parity(*tok, "llama3", false);
}

TEST(TokenizerParity, GgufVocabWithSmolLMPreMatchesHF) {
  std::ifstream in(reference_dir() + "gguf_vocab.json");
  const json g = json::parse(in);
  BpeVocab v;
  v.tokens = g.at("tokens").get<std::vector<std::string>>();
  v.merges = g.at("merges").get<std::vector<std::string>>();
  v.token_types = g.at("token_type").get<std::vector<int32_t>>();
  v.pre = g.at("pre").get<std::string>();
  v.bos_id = g.at("bos_token_id").get<int32_t>();
  v.eos_id = g.at("eos_token_id").get<int32_t>();
  v.unk_id = g.at("unknown_token_id").get<int32_t>();
  v.pad_id = g.at("padding_token_id").get<int32_t>();
  v.add_bos = g.at("add_bos_token").get<bool>();
  EXPECT_EQ(v.pre, "smollm");
  const BpeTokenizer tok(v, "SmolLM2 GGUF");
  EXPECT_EQ(tok.eos_id, 2);
  expect_parity(tok, "smollm", false);
}

TEST(TokenizerParity, SentencePieceBpeWithByteFallbackMatches) {
  const auto tok = tokenizer_load(reference_dir() + "sp_bpe.model");
  const json& ref = expected().at("tokenizers").at("sp_bpe");
  EXPECT_EQ(tok->bos_id, ref.at("bos_id").get<int32_t>());
  EXPECT_EQ(tok->eos_id, ref.at("eos_id").get<int32_t>());
  EXPECT_EQ(tok->unk_id, ref.at("unk_id").get<int32_t>());
  expect_parity(*tok, "sp_bpe", true);
}

TEST(TokenizerParity, SentencePieceUnigramMatches) {
  const auto tok = tokenizer_load(reference_dir() + "sp_unigram.model");
  expect_parity(*tok, "sp_unigram", true);
}

TEST(TokenizerParity, SentencePieceUnigramWithByteFallbackMatches) {
  const auto tok = tokenizer_load(reference_dir() + "sp_unigram_bytes.model");
  expect_parity(*tok, "sp_unigram_bytes", true);
}

// The chat cases again, parsed keeping key order: tojson of a tool schema writes it in order.
const nlohmann::ordered_json& chat_cases() {
  static const nlohmann::ordered_json j = [] {
    std::ifstream in(reference_dir() + "expected.json");
    if (!in) throw std::runtime_error(reference_dir() + "expected.json missing: run tokenizer_reference.py");
    return nlohmann::ordered_json::parse(in).at("chat");
  }();
  return j;
}

// Whether `messages` are plain {role, content} text turns, which chat_render takes.
bool plain_turns(const nlohmann::ordered_json& messages) {
  for (const auto& m : messages) {
    if (m.size() != 2 || !m.contains("role") || !m.contains("content") || !m["content"].is_string()) return false;
  }
  return true;
}

TEST(TokenizerParity, ChatTemplatesRenderAsTransformers) {
  int checked = 0;
  std::set<std::string> names;
  for (const auto& c : chat_cases()) {
    const std::string name = c.at("template_name").get<std::string>();
    names.insert(name);
    const auto token = [&](const char* key) { return c.at(key).is_null() ? "" : c.at(key).get<std::string>(); };
    ChatTemplate chat;
    try {
      chat = chat_template_make(c.at("template").get<std::string>(), token("bos_token"), token("eos_token"));
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": " << e.what();
      continue;
    }
    const auto& messages = c.at("messages");
    const bool generation = c.at("add_generation_prompt").get<bool>();
    const auto render = [&] {
      if (c.at("tools").is_null() && plain_turns(messages)) {
        std::vector<ChatMessage> turns;
        for (const auto& m : messages) turns.push_back({m.at("role"), m.at("content")});
        return chat_render(chat, turns, generation);
      }
      return chat_render_json(chat, messages, generation, c.at("tools"));
    };
    const std::string what = name + " with " + std::to_string(messages.size()) + " messages" +
                             (c.at("tools").is_null() ? "" : " and tools") + ", generation prompt " +
                             (generation ? "on" : "off");
    if (c.at("rendered").is_null()) {  // the reference raised (raise_exception, or a TypeError in the template)
      EXPECT_THROW(render(), std::runtime_error) << what;
    } else {
      try {
        EXPECT_EQ(render(), c.at("rendered").get<std::string>()) << what;
      } catch (const std::exception& e) {
        ADD_FAILURE() << what << ": " << e.what();
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(chat_cases().size()));
  for (const char* name : {"smollm2", "chatml", "qwen2.5", "llama2", "llama3", "llama3.1", "mistral_v3", "mistral_v7",
                           "gemma2", "gemma3", "phi3", "deepseek_r1"})
    EXPECT_TRUE(names.count(name)) << "no reference cases for " << name;
}

}  // namespace
}  // namespace kmoe
