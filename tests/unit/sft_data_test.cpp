#include "data/text/sft_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/formats/model_files.h"
#include "temp_dir.h"
#include "tests/unit/error_of.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

struct SftFixture : ::testing::Test {
  testing::TempDir tmp;
  ModelFiles files;
  void SetUp() override {
    testing::write_tiny_hf_model(tmp.path.string(), 258);
    files = model_files_load(tmp.path.string());
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(tmp / name) << text;
    return tmp / name;
  }
  std::vector<int64_t> enc(const std::string& s, bool add_special = false) {
    const auto ids = files.tokenizer->encode(s, add_special);
    return {ids.begin(), ids.end()};
  }
};

TEST_F(SftFixture, AlpacaKshotChatAndTextRecordsGetTheirPromptsAndResponses) {
  const std::string path =
      write("d.jsonl",
            "{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"}\n\n"
            "{\"id\": \"q\", \"question\": \"Pick\", \"choices\": [\"x\", \"y\"], \"answer\": \"y\"}\n"
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
            "{\"role\": \"assistant\", \"content\": \"yo\"}]}\n"
            "{\"text\": \"abc\"}\n");
  SftDataOptions o;
  o.chat_for_messages = files.chat_template;
  o.eos_id = 2;
  const auto ex = sft_load({path}, *files.tokenizer, o);
  ASSERT_EQ(ex.size(), 4u);
  KshotExample alpaca;
  alpaca.instruction = "Add";
  alpaca.input = "1 2";
  auto want = enc(prompt_render(o.prompt, alpaca), true);
  EXPECT_EQ(ex[0].n_prompt, static_cast<int64_t>(want.size()));
  want.push_back('3');
  want.push_back(2);
  EXPECT_EQ(ex[0].tokens, want);
  EXPECT_EQ(ex[0].where, path + ":1");
  // K-shot: the response is the answer letter with alpaca's leading space, then EOS
  EXPECT_EQ(std::vector<int64_t>(ex[1].tokens.begin() + ex[1].n_prompt, ex[1].tokens.end()),
            (std::vector<int64_t>{' ', 'B', 2}));
  EXPECT_EQ(ex[1].where, path + ":3");
  const std::string chat_prompt = chat_render(*files.chat_template, {{"user", "hi"}}, true);
  EXPECT_EQ(ex[2].n_prompt, static_cast<int64_t>(enc(chat_prompt).size()));
  EXPECT_EQ(ex[2].response_tokens(), 3);
  EXPECT_EQ(ex[3].n_prompt, 1);  // plain text: every token but the first is a target
  EXPECT_EQ(ex[3].tokens, (std::vector<int64_t>{'a', 'b', 'c', 2}));
}

TEST_F(SftFixture, ExamplesKeepTheIndexOfTheirFile) {
  const std::string a = write("a.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
  const std::string b = write("b.jsonl", "{\"text\": \"c\"}\n");
  SftDataOptions o;
  o.eos_id = 2;
  const auto ex = sft_load({b, a}, *files.tokenizer, o);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].source, 0);  // b.jsonl, the first file given
  EXPECT_EQ(ex[1].source, 1);
  EXPECT_EQ(ex[2].source, 1);
  EXPECT_EQ(ex[2].where, a + ":2");
}

TEST_F(SftFixture, ChatStyleEndsResponsesWithTheEndOfTurnToken) {
  PromptFormat chat{PromptStyle::chat, files.chat_template};
  EXPECT_EQ(sft_eos_id(*files.tokenizer, files.config.eos_token_ids, chat), 257);  // <|im_end|>
  EXPECT_EQ(sft_eos_id(*files.tokenizer, files.config.eos_token_ids, PromptFormat{}), 2);
}

TEST_F(SftFixture, TruncationCutsTheResponseAndDropsExamplesWithoutOne) {
  const std::string path = write("t.jsonl",
                                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, "
                                 "{\"role\": \"assistant\", \"content\": \"a long answer\"}]}\n"
                                 "{\"messages\": [{\"role\": \"user\", \"content\": \"" +
                                     std::string(400, 'x') + "\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n");
  SftDataOptions o;
  o.prompt = {PromptStyle::chat, files.chat_template};
  o.eos_id = 257;
  const int64_t prompt_len = static_cast<int64_t>(enc(chat_render(*files.chat_template, {{"user", "q"}}, true)).size());
  o.max_len = prompt_len + 4;
  SftDataStats stats;
  const auto ex = sft_load({path}, *files.tokenizer, o, &stats);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(static_cast<int64_t>(ex[0].tokens.size()), o.max_len);
  EXPECT_EQ(ex[0].response_tokens(), 4);
  EXPECT_EQ(stats.records, 2);
  EXPECT_EQ(stats.truncated, 1);
  EXPECT_EQ(stats.dropped, 1);
}

TEST_F(SftFixture, BadRecordsNameFileAndLine) {
  SftDataOptions o;
  o.eos_id = 2;
  auto error_of = [&](const std::string& text) {
    const std::string path = write("bad.jsonl", text);
    try {
      sft_load({path}, *files.tokenizer, o);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{\"text\": \"a\"}\n{oops\n").find("bad.jsonl:2: invalid JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"a\"}\n\n{\"foo\": 1}\n").find("bad.jsonl:3: not a training record"),
            std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"a\"}\n{\"question\": \"q\", \"choices\": [\"a\"], \"answer\": \"Z\"}\n")
                .find("bad.jsonl:2: answer 'Z'"),
            std::string::npos);
  EXPECT_NE(error_of("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n").find("bad.jsonl:1: no assistant"),
            std::string::npos);
}

}  // namespace
}  // namespace kmoe

namespace kmoe {
namespace {

TEST(SftData, DataArgumentsTakeAFractionAfterTheLastColon) {
  EXPECT_EQ(sft_source_parse("a.jsonl").path, "a.jsonl");
  EXPECT_EQ(sft_source_parse("a.jsonl").fraction, 1.0);
  EXPECT_EQ(sft_source_parse("d/a.jsonl:1/256").path, "d/a.jsonl");
  EXPECT_DOUBLE_EQ(sft_source_parse("d/a.jsonl:1/256").fraction, 1.0 / 256);
  EXPECT_DOUBLE_EQ(sft_source_parse("a.jsonl:0.25").fraction, 0.25);
  EXPECT_DOUBLE_EQ(sft_source_parse("a.jsonl:1").fraction, 1.0);
  for (const char* bad : {"a.jsonl:0", "a.jsonl:3/2", "a.jsonl:1/0", "a.jsonl:half", ":1/2"})
    EXPECT_NE(error_of([&] { sft_source_parse(bad); }).find(std::string("--data ") + bad), std::string::npos) << bad;
  // an existing file is its path, colon or not
  const std::string odd = (std::filesystem::temp_directory_path() / "kmoe_sft:1").string();
  std::ofstream(odd) << "{}\n";
  EXPECT_EQ(sft_source_parse(odd).path, odd);
  EXPECT_EQ(sft_source_parse(odd).fraction, 1.0);
  std::filesystem::remove(odd);
}

TEST(SftData, SourceFractionsDrawASeededSubsetInFileOrder) {
  std::vector<SftExample> all;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < (s == 2 ? 0 : 40); ++i) {
      SftExample ex;
      ex.source = s;
      ex.where = "f" + std::to_string(s) + ":" + std::to_string(i + 1);
      ex.tokens = {s, i};
      all.push_back(ex);
    }
  }
  std::vector<int64_t> kept;
  const auto a = sft_sample_sources(all, {1.0, 0.25, 0.5}, 7, &kept);
  EXPECT_EQ(kept, (std::vector<int64_t>{40, 10, 0}));
  ASSERT_EQ(a.size(), 50u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(a[i].where, all[i].where);  // fraction 1: all, in order
  std::vector<int64_t> lines;
  for (size_t i = 40; i < a.size(); ++i) {
    EXPECT_EQ(a[i].source, 1);
    lines.push_back(a[i].tokens[1]);
  }
  EXPECT_TRUE(std::is_sorted(lines.begin(), lines.end()));
  EXPECT_EQ(std::set<int64_t>(lines.begin(), lines.end()).size(), 10u);    // without replacement
  EXPECT_NE(lines, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));  // not the first ten
  // the same seed draws the same subset; another seed another one
  const auto again = sft_sample_sources(all, {1.0, 0.25, 0.5}, 7);
  const auto other = sft_sample_sources(all, {1.0, 0.25, 0.5}, 8);
  std::vector<std::string> wa, wb, wc;
  for (const auto& e : a) wa.push_back(e.where);
  for (const auto& e : again) wb.push_back(e.where);
  for (const auto& e : other) wc.push_back(e.where);
  EXPECT_EQ(wa, wb);
  EXPECT_NE(wa, wc);
  // a tiny share keeps at least one example
  sft_sample_sources(all, {1.0 / 256, 1.0 / 256, 1.0}, 7, &kept);
  EXPECT_EQ(kept, (std::vector<int64_t>{1, 1, 0}));
}

}  // namespace
}  // namespace kmoe
