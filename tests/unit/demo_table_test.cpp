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

}  // namespace
}  // namespace kmoe
