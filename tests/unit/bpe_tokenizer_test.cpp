#include "data/tokenizers/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kmoe {
namespace {

using nlohmann::json;

// GPT-2's printable form of every byte, so a vocabulary holds all 256 single bytes.
std::vector<std::string> byte_tokens() {
  std::vector<std::string> out;
  uint32_t extra = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? b : 256 + extra++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out.push_back(s);
  }
  return out;
}

// A tiny byte-level tokenizer.json: bytes, then "Ġt" "he" "Ġthe" "hello" and two added tokens.
json tiny_json() {
  json vocab = json::object();
  auto bytes = byte_tokens();
  for (size_t i = 0; i < bytes.size(); ++i) vocab[bytes[i]] = i;
  vocab["\xC4\xA0t"] = 256;  // "Ġt"
  vocab["he"] = 257;
  vocab["\xC4\xA0the"] = 258;  // "Ġthe"
  vocab["ll"] = 259;
  vocab["hell"] = 260;
  json j;
  j["model"] = {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", json::array({"\xC4\xA0 t", json::array({"h", "e"}), "\xC4\xA0t he", "l l", "he ll"})}};
  j["added_tokens"] =
      json::array({{{"id", 261}, {"content", "<|end|>"}, {"special", true}},
                   {{"id", 262}, {"content", "<sep>"}, {"special", false}, {"lstrip", true}, {"rstrip", true}}});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|end|>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
      {"special_tokens", {{"<|end|>", {{"id", "<|end|>"}, {"ids", {261}}}}}}};
  return j;
}

TEST(BpeTokenizer, MergesByRankInBothMergeForms) {
  const auto tok = BpeTokenizer::from_json_text(tiny_json().dump(), "tiny.json");
  // " the" -> Ġ t h e -> Ġt h e -> Ġt he -> Ġthe
  EXPECT_EQ(tok->encode(" the", false), (std::vector<int32_t>{258}));
  // "hello": h e l l o -> he l l o -> he ll o -> hell o
  EXPECT_EQ(tok->encode("hello", false), (std::vector<int32_t>{260, 'o'}));
  EXPECT_EQ(tok->decode({260, 'o'}), "hello");
  EXPECT_EQ(tok->token_to_id("\xC4\xA0the"), 258);
  EXPECT_EQ(tok->id_to_token(258), "\xC4\xA0the");
  EXPECT_EQ(tok->token_to_id("absent"), -1);
}

TEST(BpeTokenizer, TemplateProcessingAddsBos) {
  const auto tok = BpeTokenizer::from_json_text(tiny_json().dump(), "tiny.json");
  EXPECT_EQ(tok->bos_id, 261);
  EXPECT_EQ(tok->encode(" the", true), (std::vector<int32_t>{261, 258}));
  EXPECT_EQ(tok->encode("", true), (std::vector<int32_t>{261}));
}

TEST(BpeTokenizer, AddedTokensAreCutBeforePreTokenizingAndStripWhitespace) {
  const auto tok = BpeTokenizer::from_json_text(tiny_json().dump(), "tiny.json");
  EXPECT_EQ(tok->encode("<|end|> the", false), (std::vector<int32_t>{261, 258}));
  // <sep> swallows the spaces on both sides (lstrip/rstrip)
  EXPECT_EQ(tok->encode("he  <sep>  he", false), (std::vector<int32_t>{257, 262, 257}));
  EXPECT_EQ(tok->decode({261, 258}), "<|end|> the");
  EXPECT_EQ(tok->decode({261, 258}, true), " the");  // special skipped
  EXPECT_EQ(tok->decode({262}, true), "<sep>");      // not special: kept
}

TEST(BpeTokenizer, SingleWordAddedTokenOnlyMatchesAlone) {
  json j = tiny_json();
  j["added_tokens"][1]["single_word"] = true;
  j["added_tokens"][1]["lstrip"] = false;
  j["added_tokens"][1]["rstrip"] = false;
  const auto tok = BpeTokenizer::from_json_text(j.dump(), "tiny.json");
  const auto alone = tok->encode("x <sep> y", false);
  EXPECT_EQ(std::count(alone.begin(), alone.end(), 262), 1);
  const auto inside = tok->encode("x<sep>y", false);
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 262), 0);
}

TEST(BpeTokenizer, SplitBehaviorsFollowHF) {
  json j = tiny_json();
  const auto pieces = [&](const std::string& behavior, bool invert) {
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}},
                      {{"type", "ByteLevel"}, {"use_regex", false}}})}};
    return BpeTokenizer::from_json_text(j.dump(), "tiny.json")->pre_tokenize("a-b--c");
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Isolated", false), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(pieces("Removed", false), (V{"a", "b", "c"}));
  EXPECT_EQ(pieces("MergedWithPrevious", false), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pieces("MergedWithNext", false), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(pieces("Contiguous", false), (V{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(pieces("Removed", true), (V{"-", "-", "-"}));
}

TEST(BpeTokenizer, DigitsAndPrefixSpacePreTokenizers) {
  json j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}},
                                                       {{"type", "ByteLevel"}, {"add_prefix_space", true}}})}};
  const auto tok = BpeTokenizer::from_json_text(j.dump(), "tiny.json");
  EXPECT_EQ(tok->pre_tokenize("ab12"), (std::vector<std::string>{" ab", " 1", " 2"}));
}

TEST(BpeTokenizer, GgufVocabUsesLlamaCppPreRegexes) {
  BpeVocab v;
  v.tokens = byte_tokens();
  v.tokens.push_back("<s>");
  v.token_types.assign(v.tokens.size(), 1);
  v.token_types.back() = 3;
  v.tokens.push_back("12");
  v.token_types.push_back(1);
  v.merges = {"1 2"};
  v.pre = "smollm";
  v.bos_id = 256;
  v.add_bos = true;
  const BpeTokenizer smollm(v, "test.gguf");
  EXPECT_EQ(smollm.encode("12", true), (std::vector<int32_t>{256, '1', '2'}));  // digits split first
  v.pre = "gpt2";
  const BpeTokenizer gpt2(v, "test.gguf");
  EXPECT_EQ(gpt2.encode("12<s>", false), (std::vector<int32_t>{257, 256}));
  EXPECT_EQ(bpe_pre_regexes("llama-bpe").size(), 1u);
}

TEST(BpeTokenizer, InvalidUtf8InputIsRejected) {
  const auto tok = BpeTokenizer::from_json_text(tiny_json().dump(), "tiny.json");
  EXPECT_THROW(tok->encode("ok \xC3 bad", false), std::runtime_error);
}

// Every kind of bad input names the file and what is wrong.
void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "no error; expected one mentioning " << fragment;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(BpeTokenizer, BadTokenizerJsonNamesFileAndField) {
  expect_error([] { BpeTokenizer::from_json_text("{", "bad.json"); }, "bad.json: not valid JSON");
  json j = tiny_json();
  j["model"]["type"] = "WordPiece";
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "model.type 'WordPiece'");
  j = tiny_json();
  j["model"]["merges"].push_back("a b c");
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "model.merges[5]");
  j = tiny_json();
  j["model"]["merges"].push_back("x q");  // "xq" is not in the vocabulary
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "merge 5 'x q'");
  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "pre-tokenizer type 'Whitespace'");
  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "("}}}, {"behavior", "Isolated"}};
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "does not compile");
  j = tiny_json();
  j["normalizer"] = {{"type", "NFKC"}};
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "normalizer 'NFKC'");
  j = tiny_json();
  j["post_processor"] = {{"type", "BertProcessing"}};
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "post-processor type 'BertProcessing'");
  // Found by fuzz_text_formats: a float id was converted to int (UB for 2.9e36); ids that are
  // not integers in [0, 2^24) are errors naming the token.
  for (const json& id : {json(2.888888888888889e36), json(1.5), json(-1), json(int64_t{1} << 40), json("7")}) {
    j = tiny_json();
    j["model"]["vocab"]["a"] = id;
    expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "bad.json: model.vocab['a']");
  }
  j = tiny_json();
  j["added_tokens"] = json::array({{{"id", 1e300}, {"content", "<x>"}}});
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "added_tokens id: a token id must be an integer");
  j = tiny_json();
  j.erase("model");
  expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "bad.json"); }, "malformed tokenizer.json");
  const auto tok = BpeTokenizer::from_json_text(tiny_json().dump(), "tiny.json");
  expect_error([&] { tok->decode({99999}); }, "cannot decode token id 99999");
}

TEST(BpeTokenizer, BadGgufVocabNamesKey) {
  BpeVocab v;
  v.tokens = byte_tokens();
  v.pre = "no-such-pre";
  expect_error([&] { BpeTokenizer(v, "m.gguf"); }, "unknown BPE pre-tokenizer 'no-such-pre'");
  v.pre = "gpt2";
  v.merges = {"ab"};
  expect_error([&] { BpeTokenizer(v, "m.gguf"); }, "tokenizer.ggml.merges[0]");
  v.merges = {};
  v.token_types = {1};
  expect_error([&] { BpeTokenizer(v, "m.gguf"); }, "tokenizer.ggml.token_type");
  v.token_types = {};
  v.bos_id = 5000;
  expect_error([&] { BpeTokenizer(v, "m.gguf"); }, "bos_token_id 5000");
  expect_error([] { BpeTokenizer(BpeVocab{}, "m.gguf"); }, "tokenizer.ggml.tokens is empty");
}

}  // namespace
}  // namespace kmoe
