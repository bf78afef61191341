// evaluator/demo_table.h: the demo's table has every method row and task column plus the
// average, a missing accuracy shows as "-" and makes the average missing, and the PNG is one
// panel per task plus the average.
#include "evaluator/demo_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "temp_dir.h"

namespace kmoe {
namespace {

DemoTable two_by_two() {
  DemoTable t;
  t.tasks = {"mc", "yesno"};
  t.method_keys = {"base", "full"};
  t.method_labels = {"base model", "full method"};
  t.accuracy = {{25.0, 50.0}, {40.0, std::numeric_limits<double>::quiet_NaN()}};
  return t;
}

TEST(DemoTable, AverageIsTheMeanAndMissingPropagates) {
  const DemoTable t = two_by_two();
  EXPECT_DOUBLE_EQ(demo_table_average(t, 0), 37.5);
  EXPECT_TRUE(std::isnan(demo_table_average(t, 1)));
}

TEST(DemoTable, TextAndMarkdownHaveEveryRowAndColumn) {
  const DemoTable t = two_by_two();
  const std::string text = demo_table_text(t);
  EXPECT_NE(text.find("method"), std::string::npos);
  EXPECT_NE(text.find("mc"), std::string::npos);
  EXPECT_NE(text.find("average"), std::string::npos);
  EXPECT_NE(text.find("25.0"), std::string::npos);
  EXPECT_NE(text.find("37.5"), std::string::npos);
  const std::string md = demo_table_markdown(t);
  EXPECT_NE(md.find("| method | mc | yesno | average |"), std::string::npos) << md;
  EXPECT_NE(md.find("| base model | 25.0 | 50.0 | 37.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| full method | 40.0 | - | - |"), std::string::npos) << md;
}

TEST(DemoTable, JsonNamesMethodsAndTasks) {
  const nlohmann::json j = demo_table_json(two_by_two());
  EXPECT_EQ(j["tasks"], nlohmann::json({"mc", "yesno"}));
  EXPECT_EQ(j["methods"][0]["key"], "base");
  EXPECT_DOUBLE_EQ(j["methods"][0]["accuracy_percent"]["yesno"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["methods"][0]["average_percent"].get<double>(), 37.5);
  EXPECT_TRUE(j["methods"][1]["accuracy_percent"]["yesno"].is_null());
  EXPECT_TRUE(j["methods"][1]["average_percent"].is_null());
}

TEST(DemoTable, NotesFollowTheTableInEveryForm) {
  DemoTable t = two_by_two();
  EXPECT_EQ(demo_table_text(t).find("note:"), std::string::npos);
  EXPECT_FALSE(demo_table_json(t).contains("notes"));
  t.notes = {"R_A only is R_P only on mc draw 0", "a second note"};
  const std::string text = demo_table_text(t);
  EXPECT_NE(text.find("\nnote: R_A only is R_P only on mc draw 0\nnote: a second note\n"), std::string::npos) << text;
  EXPECT_GT(text.find("note:"), text.find("full method"));  // under the rows
  EXPECT_NE(demo_table_markdown(t).find("\nNote: a second note\n"), std::string::npos);
  EXPECT_EQ(demo_table_json(t)["notes"], nlohmann::json(t.notes));
}

TEST(DemoTable, PngIsWritten) {
  testing::TempDir tmp;
  demo_table_png(two_by_two(), tmp / "demo.png", 1);
  std::ifstream in(tmp / "demo.png", std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
}

// Every panel on one axis: the same accuracy is a bar of the same length in every panel.
TEST(DemoTable, PanelsShareOneAccuracyAxis) {
  DemoTable t;
  t.tasks = {"mc", "yesno"};
  t.method_keys = {"base", "full"};
  t.method_labels = {"base model", "MoE of selected experts, K-shot data only"};
  t.accuracy = {{50.0, 10.0}, {20.0, 50.0}};
  const Image im = demo_table_image(t, 1);
  std::vector<int64_t> widths;  // bars in drawing order: panel mc (base, full), yesno, average
  for (const auto& op : im.ops) {
    if (op.kind == DrawOp::Kind::rect && (op.colour == plot_colour::bar || op.colour == plot_colour::highlight) &&
        op.y1 - op.y0 == 10)
      widths.push_back(op.x1 - op.x0);
  }
  ASSERT_EQ(widths.size(), 6u);
  EXPECT_EQ(widths[0], widths[3]);                                    // 50 in mc and 50 in yesno
  EXPECT_NEAR(static_cast<double>(widths[0]) / widths[2], 5.0, 0.2);  // 50 vs 10 across panels
  int labels = 0, legends = 0;
  for (const auto& op : im.ops) {
    if (op.kind != DrawOp::Kind::text) continue;
    labels += op.text == "MoE of selected experts, K-shot data only";
  }
  legends = labels - 3;  // one label per panel, the rest are legend entries
  EXPECT_EQ(legends, 3);
}

TEST(DemoTable, SampleSdUsesNMinusOne) {
  EXPECT_NEAR(sample_sd({10, 20, 30}), 10.0, 1e-12);
  EXPECT_TRUE(std::isnan(sample_sd({10})));
}

// Paired bootstrap: a method that is right exactly where the other is wrong on half the
// examples differs by +50 points, with an interval around it; identical methods give 0 [0, 0];
// the interval narrows with more examples, and shapes that differ are refused.
TEST(DemoTable, PairedBootstrapCentresOnTheDifferenceAndKeepsPairs) {
  const auto outcomes = [](size_t n, size_t draws, bool better) {
    DrawOutcomes o(draws, std::vector<double>(n));
    for (size_t d = 0; d < draws; ++d)
      for (size_t i = 0; i < n; ++i) o[d][i] = better ? (i % 2 == 0 ? 1.0 : 1.0) : (i % 2 == 0 ? 0.0 : 1.0);
    return o;
  };
  const auto small = paired_bootstrap({outcomes(40, 2, true)}, {outcomes(40, 2, false)}, 2000, 1);
  ASSERT_EQ(small.size(), 2u);  // the task and the average
  EXPECT_DOUBLE_EQ(small[0].mean, 50.0);
  EXPECT_LT(small[0].lo, 50.0);
  EXPECT_GT(small[0].hi, 50.0);
  EXPECT_GT(small[0].lo, 25.0);
  EXPECT_DOUBLE_EQ(small[1].mean, 50.0);
  const auto large = paired_bootstrap({outcomes(400, 2, true)}, {outcomes(400, 2, false)}, 2000, 1);
  EXPECT_LT(large[0].hi - large[0].lo, (small[0].hi - small[0].lo) / 2);
  // The same outcomes: every paired resample differs by exactly zero. Unpaired resampling of
  // each method separately would give a wide interval here.
  const auto same = paired_bootstrap({outcomes(40, 3, false)}, {outcomes(40, 3, false)}, 500, 2);
  EXPECT_EQ(same[0].lo, 0.0);
  EXPECT_EQ(same[0].hi, 0.0);
  // Two tasks: the average's mean is the mean of the tasks' means.
  const auto two = paired_bootstrap({outcomes(40, 1, true), outcomes(20, 1, false)},
                                    {outcomes(40, 1, false), outcomes(20, 1, false)}, 500, 3);
  ASSERT_EQ(two.size(), 3u);
  EXPECT_DOUBLE_EQ(two[2].mean, 25.0);
  EXPECT_THROW(paired_bootstrap({outcomes(40, 2, true)}, {outcomes(41, 2, false)}, 10, 1), std::invalid_argument);
  EXPECT_THROW(paired_bootstrap({outcomes(40, 2, true)}, {outcomes(40, 3, false)}, 10, 1), std::invalid_argument);
}

TEST(DemoTable, StudentT975MatchesTheTableAndTheNormalLimit) {
  EXPECT_DOUBLE_EQ(student_t975(1), 12.706);
  EXPECT_DOUBLE_EQ(student_t975(2), 4.303);
  EXPECT_DOUBLE_EQ(student_t975(30), 2.042);
  EXPECT_NEAR(student_t975(40), 2.021, 5e-4);  // tables: 2.0211
  EXPECT_NEAR(student_t975(60), 2.000, 5e-4);  // 2.0003
  EXPECT_NEAR(student_t975(120), 1.980, 5e-4);  // 1.9799
  EXPECT_NEAR(student_t975(1000000), 1.95996, 1e-4);
  EXPECT_THROW(student_t975(0), std::invalid_argument);
}

// Per-draw differences 10, 20, 30 points: mean 20, sd 10, 95% t interval 20 +- 4.303 * 10 / sqrt 3;
// the paired bootstrap over the same outcomes is much narrower, because it holds the draws fixed.
TEST(DemoTable, DrawTIntervalSeesTheSpreadBetweenDraws) {
  const size_t n = 100;
  const auto correct_first = [n](size_t k) {
    std::vector<double> o(n, 0.0);
    for (size_t i = 0; i < k; ++i) o[i] = 1.0;
    return o;
  };
  const DrawOutcomes a = {correct_first(60), correct_first(70), correct_first(80)};
  const DrawOutcomes b = {correct_first(50), correct_first(50), correct_first(50)};
  const auto d = draw_t_interval({a}, {b});
  ASSERT_EQ(d.size(), 2u);  // the task and the average
  const double half = 4.303 * 10.0 / std::sqrt(3.0);
  EXPECT_NEAR(d[0].mean, 20.0, 1e-12);
  EXPECT_NEAR(d[0].lo, 20.0 - half, 1e-9);
  EXPECT_NEAR(d[0].hi, 20.0 + half, 1e-9);
  const auto boot = paired_bootstrap({a}, {b}, 2000, 1);
  EXPECT_NEAR(boot[0].mean, 20.0, 1e-9);
  EXPECT_LT(boot[0].hi - boot[0].lo, d[0].hi - d[0].lo);
  EXPECT_GT(boot[0].lo, d[0].lo);
  // Two tasks: the average interval is over the per-draw averages (15, 25, 35 with a second
  // task at +10 on every draw), not the mean of the tasks' intervals.
  const DrawOutcomes c = {correct_first(60), correct_first(60), correct_first(60)};
  const auto two = draw_t_interval({a, c}, {b, b});
  ASSERT_EQ(two.size(), 3u);
  EXPECT_NEAR(two[1].mean, 10.0, 1e-12);
  EXPECT_NEAR(two[1].lo, 10.0, 1e-9);  // no spread between draws: a zero-width interval
  EXPECT_NEAR(two[1].hi, 10.0, 1e-9);
  EXPECT_NEAR(two[2].mean, 15.0, 1e-12);
  EXPECT_NEAR(two[2].hi - two[2].lo, half, 1e-9);  // sd of (15, 20, 25) is 5
  // One draw: a mean without an interval.
  const auto one = draw_t_interval({{a[0]}}, {{b[0]}});
  EXPECT_NEAR(one[0].mean, 10.0, 1e-12);
  EXPECT_TRUE(std::isnan(one[0].lo) && std::isnan(one[0].hi));
  EXPECT_THROW(draw_t_interval({a}, {{b[0], b[1]}}), std::invalid_argument);
  EXPECT_THROW(draw_t_interval({a, c}, {b}), std::invalid_argument);
}

// With several draws the cells read "mean ± sd", the differences table follows, and every bar
// has a whisker of +-sd around its end.
TEST(DemoTable, DrawsAddSdCellsDifferencesAndWhiskers) {
  DemoTable t = two_by_two();
  t.accuracy[1][1] = 60.0;
  t.draws = 3;
  t.spread = {{1.0, 2.0}, {3.0, 4.5}};
  t.average_spread = {1.5, 2.5};
  t.difference_labels = {"base model"};
  t.differences = {{{15.0, 5.0, 25.0}, {10.0, -2.5, 20.0}, {12.5, 3.0, 21.0}}};
  const std::string text = demo_table_text(t);
  EXPECT_NE(text.find("25.0 \u00b1 1.0"), std::string::npos) << text;
  EXPECT_NE(text.find("50.0 \u00b1 2.5"), std::string::npos) << text;  // the average row of full
  EXPECT_NE(text.find("+15.0 [+5.0, +25.0]"), std::string::npos) << text;
  EXPECT_NE(text.find("+10.0 [-2.5, +20.0]"), std::string::npos) << text;
  const std::string md = demo_table_markdown(t);
  EXPECT_NE(md.find("| full method | 40.0 \u00b1 3.0 | 60.0 \u00b1 4.5 | 50.0 \u00b1 2.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| base model | +15.0 [+5.0, +25.0] | +10.0 [-2.5, +20.0] | +12.5 [+3.0, +21.0] |"),
            std::string::npos)
      << md;
  const nlohmann::json j = demo_table_json(t);
  EXPECT_DOUBLE_EQ(j["methods"][1]["sd_percent"]["yesno"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(j["full_minus_baseline"][0]["points"]["average"]["lo"].get<double>(), 3.0);
  EXPECT_FALSE(j["full_minus_baseline"][0]["points"]["average"].contains("over_draws"));
  EXPECT_EQ(text.find("t interval"), std::string::npos) << text;
  // The t intervals over the draws: a second differences table, and "over_draws" in the JSON.
  DemoTable with_draws = t;
  with_draws.draw_differences = {{{15.0, -30.0, 60.0}, {10.0, -40.5, 60.5}, {12.5, -20.0, 45.0}}};
  const std::string text2 = demo_table_text(with_draws);
  EXPECT_NE(text2.find("+15.0 [+5.0, +25.0]"), std::string::npos) << text2;
  EXPECT_NE(text2.find("+15.0 [-30.0, +60.0]"), std::string::npos) << text2;
  EXPECT_NE(text2.find("95% t interval over the 3 draws"), std::string::npos) << text2;
  EXPECT_NE(demo_table_markdown(with_draws).find("| base model | +15.0 [-30.0, +60.0] | +10.0 [-40.5, +60.5] |"),
            std::string::npos);
  const nlohmann::json j2 = demo_table_json(with_draws);
  EXPECT_DOUBLE_EQ(j2["full_minus_baseline"][0]["points"]["yesno"]["over_draws"]["hi"].get<double>(), 60.5);
  // Whiskers: per bar one more 1-pixel-high ink line than without spreads; 2 methods x 3 panels.
  const auto lines = [](const Image& im) {
    int n = 0;
    for (const auto& op : im.ops)
      n += op.kind == DrawOp::Kind::rect && op.colour == plot_colour::ink && op.y1 - op.y0 == 1 && op.x1 - op.x0 > 2;
    return n;
  };
  DemoTable plain = t;
  plain.spread.clear();
  plain.average_spread.clear();
  EXPECT_EQ(lines(demo_table_image(t, 1)) - lines(demo_table_image(plain, 1)), 6);
}

}  // namespace
}  // namespace kmoe
