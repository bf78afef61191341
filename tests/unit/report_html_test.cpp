// evaluator/report_html.h: report.md's Markdown subset becomes HTML with the plots inline.
#include "evaluator/report_html.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace kmoe {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ReportHtml, HeadingsTablesFiguresAndInlineMarkup) {
  const std::string md =
      "# kmoe run report\n\nRun directory: `/r`\n\n## Scores (scores.h5)\n\n"
      "Two rows, **chosen** marked; acc_ll stays as is.\n\n"
      "| adapter | acc |\n| --- | ---: |\n| base | 0.5000 |\n| a<b | 0.7500 |\n\n"
      "![accuracy per adapter](scores.png)\n\n_No eval.h5 in the run directory: evaluation omitted._\n";
  const std::string html = report_html(md, {{"scores.png", "<svg id=\"s\"></svg>\n"}}, "report");
  EXPECT_NE(html.find("<h1>kmoe run report</h1>"), std::string::npos) << html;
  EXPECT_NE(html.find("<h2>Scores (scores.h5)</h2>"), std::string::npos);
  EXPECT_NE(html.find("Run directory: <code>/r</code>"), std::string::npos);
  EXPECT_NE(html.find("<strong>chosen</strong> marked; acc_ll stays as is."), std::string::npos);
  EXPECT_EQ(count(html, "<table>"), 1);
  EXPECT_EQ(count(html, "<tr>"), 3);  // header + 2 rows
  EXPECT_NE(html.find("<th class=\"r\">acc</th>"), std::string::npos);
  EXPECT_NE(html.find("<td>a&lt;b</td><td class=\"r\">0.7500</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("<figure>\n<svg id=\"s\"></svg>\n<figcaption>accuracy per adapter</figcaption>"),
            std::string::npos);
  EXPECT_NE(html.find("<p class=\"note\">No eval.h5 in the run directory: evaluation omitted.</p>"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
}

TEST(ReportHtml, PlotWithoutItsSvgIsRefused) {
  EXPECT_THROW(report_html("![x](missing.png)\n", {}, "r"), std::invalid_argument);
}

}  // namespace
}  // namespace kmoe
