// PANDA's retrieval and prompt pieces (evaluator/panda.*) and the encoder comparison
// (data/encoders/encoder_load.*): nearest rows by cosine with rows left out, random rows
// drawn per query, the template file and its one-pass filling.
#include "evaluator/panda.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/encoders/encoder_load.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

TEST(PandaRetrieval, NearestByCosineSkipsRowsThatMayNotBeUsed) {
  // Cosine, not dot product: row 2 is long but points away from the query.
  const auto keys = torch::tensor({{1.0f, 0.0f}, {0.8f, 0.6f}, {10.0f, 10.0f}, {0.0f, 1.0f}, {1.0f, 0.0f}});
  const auto q = torch::tensor({{1.0f, 0.1f}});
  auto rows = insight_nearest(q, keys, 3, {true, true, true, true, true});
  EXPECT_EQ(rows.at(0), (std::vector<int64_t>{0, 4, 1}));  // 0 and 4 tie: the lower row first
  rows = insight_nearest(q, keys, 3, {false, true, true, true, true});
  EXPECT_EQ(rows.at(0), (std::vector<int64_t>{4, 1, 2}));
  rows = insight_nearest(q, keys, 9, {false, false, true, false, false});
  EXPECT_EQ(rows.at(0), (std::vector<int64_t>{2}));
}

TEST(PandaRetrieval, RandomRowsAreDistinctUsableAndDependOnTheQueryAlone) {
  std::vector<bool> usable(50, true);
  usable[7] = usable[8] = false;
  std::set<std::vector<int64_t>> draws;
  for (int64_t i = 0; i < 20; ++i) {
    const auto r = insight_random(50, 6, usable, 11, i);
    ASSERT_EQ(r.size(), 6u);
    EXPECT_EQ(std::set<int64_t>(r.begin(), r.end()).size(), 6u);
    for (const auto x : r) EXPECT_TRUE(x >= 0 && x < 50 && usable[x]) << x;
    EXPECT_EQ(r, insight_random(50, 6, usable, 11, i));  // the same draw whatever came before
    draws.insert(r);
  }
  EXPECT_GT(draws.size(), 15u);
  EXPECT_NE(insight_random(50, 6, usable, 11, 0), insight_random(50, 6, usable, 12, 0));
}

TEST(PandaPrompt, RenderFillsEachPlaceholderOnce) {
  InsightPool pool;
  pool.keys = {"What is 2+2?", "Is ice cold?"};
  pool.insights = {"Add the numbers {question}.", "Ice is frozen water."};
  pool.answers = {"4", "yes"};
  pool.preferred = {"4", "yes"};
  pool.rejected = {"5", "no"};
  const auto t = insight_template_default(InsightMode::insights);
  EXPECT_EQ(insight_render(t, "Is fire hot?", pool, {1, 0}),
            "Insights that may help:\nQuestion: Is ice cold?\nInsight: Ice is frozen water.\n"
            "Question: What is 2+2?\nInsight: Add the numbers {question}.\n\nNow answer this question.\nIs fire hot?");
  const auto e = insight_template_default(InsightMode::examples);
  EXPECT_EQ(insight_render(e, "Q", pool, {0}), "Examples:\nQuestion: What is 2+2?\nAnswer: 4\n\nNow answer this question.\nQ");
  EXPECT_EQ(insight_render({"<{items}>{question}", "[{preferred}>{rejected}]"}, "Q", pool, {0, 1}), "<[4>5][yes>no]>Q");
}

TEST(PandaPrompt, TemplateFileNeedsItsSeparatorAndPlaceholders) {
  const auto dir = std::filesystem::temp_directory_path() / "kmoe_panda_template_test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream((dir / name).string()) << text;
    return (dir / name).string();
  };
  const auto good = insight_template_read(write("good.txt", "Hints:\n{items}\n{question}\n----\n* {insight}\n"));
  EXPECT_EQ(good.block, "Hints:\n{items}\n{question}");
  EXPECT_EQ(good.item, "* {insight}\n");
  const auto no_sep = write("nosep.txt", "{items}{question}\n* {insight}\n");
  EXPECT_NE(error_of<std::invalid_argument>([&] { insight_template_read(no_sep); }).find("nosep.txt: an insight template is"),
            std::string::npos);
  const auto no_q = write("noq.txt", "{items}\n----\n* {insight}\n");
  EXPECT_NE(error_of<std::invalid_argument>([&] { insight_template_read(no_q); }).find("must hold {items} and {question}"),
            std::string::npos);
  EXPECT_NE(error_of([&] { insight_template_read((dir / "absent.txt").string()); }).find("absent.txt: cannot open"),
            std::string::npos);
  std::filesystem::remove_all(dir);
  EXPECT_THROW(insight_mode_parse("retrieved"), std::invalid_argument);
  EXPECT_EQ(insight_mode_parse("random"), InsightMode::random);
}

TEST(PandaKey, QuestionChoicesThenInput) {
  KshotExample ex;
  ex.instruction = "Pick one.";
  ex.choices = {"red", "blue"};
  EXPECT_EQ(panda_key(ex), "Pick one.\nA. red\nB. blue");
  ex.input = "context";
  EXPECT_EQ(panda_key(ex), "Pick one.\nA. red\nB. blue\n\ncontext");
}

TEST(EncoderDifference, NamesTheFirstDifference) {
  EncoderDescription a{"bert", "/m", "abc", "mean", true, "", 384, 256};
  EXPECT_EQ(encoder_difference(a, a), "");
  auto b = a;
  b.model = "/elsewhere";  // the path alone is no difference
  EXPECT_EQ(encoder_difference(a, b), "");
  b.model_sha256 = "def";
  EXPECT_EQ(encoder_difference(a, b), "its model sha256 was 'abc', this one's is 'def'");
  b = a;
  b.normalize = false;
  EXPECT_EQ(encoder_difference(a, b), "its normalisation was 'on', this one's is 'off'");
  const auto spec = encoder_spec_of(a);
  EXPECT_EQ(spec.kind, "bert");
  EXPECT_EQ(spec.model, "/m");
  EXPECT_EQ(spec.max_tokens, 256);
  EXPECT_EQ(spec.normalize, std::optional<bool>(true));
}

}  // namespace
}  // namespace kmoe
