// The PNG writer and the charts, checked by decoding the bytes here with zlib: chunk CRCs,
// IHDR, the inflated scanlines, and pixels where the chart must have painted them.
#include "evaluator/png_plot.h"

#include <gtest/gtest.h>

#include <zlib.h>
#include <algorithm>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "temp_dir.h"

namespace kmoe {
namespace {

struct Decoded {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::vector<std::string> chunk_types;
  Rgb at(int64_t x, int64_t y) const {
    const uint8_t* p = &rgb[(y * width + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

// A strict decoder for what png_encode writes: 8-bit RGB, no interlace, filter type 0.
Decoded png_decode(const std::vector<uint8_t>& bytes) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_GE(bytes.size(), 8u);
  EXPECT_TRUE(std::equal(signature, signature + 8, bytes.begin()));
  Decoded d;
  std::vector<uint8_t> idat;
  size_t pos = 8;
  while (pos + 12 <= bytes.size()) {
    const uint32_t len = be32(&bytes[pos]);
    const std::string type(bytes.begin() + pos + 4, bytes.begin() + pos + 8);
    EXPECT_LE(pos + 12 + len, bytes.size()) << type;
    const uint8_t* data = &bytes[pos + 8];
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, &bytes[pos + 4], 4 + len);
    EXPECT_EQ(be32(data + len), static_cast<uint32_t>(crc)) << "CRC of " << type;
    d.chunk_types.push_back(type);
    if (type == "IHDR") {
      EXPECT_EQ(len, 13u);
      d.width = be32(data);
      d.height = be32(data + 4);
      EXPECT_EQ(data[8], 8);   // bit depth
      EXPECT_EQ(data[9], 2);   // RGB
      EXPECT_EQ(data[12], 0);  // no interlace
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    }
    pos += 12 + len;
  }
  EXPECT_EQ(pos, bytes.size());
  const size_t stride = d.width * 3 + 1;
  std::vector<uint8_t> raw(stride * d.height);
  uLongf raw_size = raw.size();
  EXPECT_EQ(uncompress(raw.data(), &raw_size, idat.data(), idat.size()), Z_OK);
  EXPECT_EQ(raw_size, raw.size());
  for (int64_t y = 0; y < d.height; ++y) {
    EXPECT_EQ(raw[y * stride], 0) << "filter type of row " << y;
    d.rgb.insert(d.rgb.end(), raw.begin() + y * stride + 1, raw.begin() + (y + 1) * stride);
  }
  return d;
}

Decoded encode_decode(const Image& im) {
  return png_decode(png_encode(im));
}

// Longest horizontal run of `c` in each row, by row.
std::vector<int64_t> row_runs(const Decoded& d, Rgb c) {
  std::vector<int64_t> out(d.height, 0);
  for (int64_t y = 0; y < d.height; ++y) {
    int64_t run = 0;
    for (int64_t x = 0; x < d.width; ++x) {
      run = d.at(x, y) == c ? run + 1 : 0;
      out[y] = std::max(out[y], run);
    }
  }
  return out;
}

TEST(PngPlot, EncodedImageDecodesToTheSamePixels) {
  Image im = image_make(7, 5, {10, 20, 30});
  image_fill(im, 2, 1, 4, 3, {200, 100, 50});
  const Decoded d = encode_decode(im);
  EXPECT_EQ(d.chunk_types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  ASSERT_EQ(d.width, 7);
  ASSERT_EQ(d.height, 5);
  EXPECT_EQ(d.rgb, im.rgb);
  EXPECT_EQ(d.at(2, 1), (Rgb{200, 100, 50}));
  EXPECT_EQ(d.at(3, 2), (Rgb{200, 100, 50}));
  EXPECT_EQ(d.at(4, 2), (Rgb{10, 20, 30}));
  EXPECT_EQ(d.at(2, 3), (Rgb{10, 20, 30}));
}

TEST(PngPlot, FillAndLineClipToTheImage) {
  Image im = image_make(10, 10);
  image_fill(im, -5, -5, 3, 3, plot_colour::ink);
  image_line(im, -20, 5, 30, 5, plot_colour::bar);
  const Decoded d = encode_decode(im);
  EXPECT_EQ(d.at(0, 0), plot_colour::ink);
  EXPECT_EQ(d.at(2, 2), plot_colour::ink);
  EXPECT_EQ(d.at(3, 3), plot_colour::background);
  for (int64_t x = 0; x < 10; ++x) EXPECT_EQ(d.at(x, 5), plot_colour::bar) << x;
}

TEST(PngPlot, TextDrawsGlyphsAndVerticalTextIsRotated) {
  Image im = image_make(40, 40);
  image_text(im, 2, 2, "I", plot_colour::ink);
  // 'I' is a vertical stroke in its middle column with serifs at top and bottom.
  for (int64_t y = 2; y < 9; ++y) EXPECT_EQ(im.at(4, y), plot_colour::ink) << y;
  EXPECT_EQ(im.at(2, 5), plot_colour::background);
  EXPECT_EQ(text_width("abc"), 17);
  Image v = image_make(40, 40);
  image_text(v, 10, 30, "-", plot_colour::ink, 1, true);
  // '-' is a horizontal stroke in row 3; rotated it becomes a vertical stroke in column 13.
  int64_t painted = 0;
  for (int64_t y = 20; y < 31; ++y) painted += v.at(13, y) == plot_colour::ink;
  EXPECT_EQ(painted, 5);
}

TEST(PngPlot, WriteIsAtomicAndLeavesNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir / "a.png";
  png_write(path, image_make(3, 2, {1, 2, 3}));
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const Decoded d = png_decode(bytes);
  EXPECT_EQ(d.width, 3);
  EXPECT_EQ(d.at(2, 1), (Rgb{1, 2, 3}));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(PngPlot, BarOfOneIsTwiceAsLongAsBarOfHalf) {
  BarChart chart;
  chart.title = "acc";
  chart.labels = {"a", "b", "c"};
  chart.values = {1.0, 0.5, 0.25};
  chart.highlight = {false, false, true};
  const Decoded d = encode_decode(bar_chart_render(chart));
  std::vector<int64_t> lengths;  // one per bar, in drawing order
  int64_t last = 0;
  for (int64_t run : row_runs(d, plot_colour::bar)) {
    if (run > 0 && run != last) lengths.push_back(run);
    last = run;
  }
  ASSERT_EQ(lengths.size(), 2u);
  EXPECT_NEAR(static_cast<double>(lengths[0]) / lengths[1], 2.0, 0.03);
  int64_t highlighted = 0;
  for (int64_t run : row_runs(d, plot_colour::highlight)) highlighted = std::max(highlighted, run);
  EXPECT_NEAR(static_cast<double>(lengths[0]) / highlighted, 4.0, 0.1);
}

// The text a chart drew, from its recorded drawing calls.
std::vector<std::string> drawn_text(const Image& im) {
  std::vector<std::string> out;
  for (const auto& op : im.ops) {
    if (op.kind == DrawOp::Kind::text) out.push_back(op.text);
  }
  return out;
}

bool has_text(const Image& im, const std::string& text) {
  const auto t = drawn_text(im);
  return std::find(t.begin(), t.end(), text) != t.end();
}

TEST(PngPlot, LongLabelsAreDrawnWholeAndTheLegendNamesTheHighlight) {
  BarChart chart;
  chart.title = "acc";
  chart.labels = {"best adapter + K-shot fine-tuning", "b"};
  chart.values = {1.0, 0.5};
  chart.highlight = {true, false};
  chart.highlight_label = "chosen expert";
  chart.width = 300;
  const Image im = bar_chart_render(chart);
  EXPECT_TRUE(has_text(im, "best adapter + K-shot fine-tuning"));
  EXPECT_TRUE(has_text(im, "chosen expert"));
  EXPECT_GT(im.width, 300);  // widened for the label
  chart.highlight_label.clear();
  EXPECT_FALSE(has_text(bar_chart_render(chart), "chosen expert"));
}

// from_zero = false: the axis spans the data, values are dots placed in order, and there
// is no bar from zero.
TEST(PngPlot, DotPlotAxisSpansTheDataNotZero) {
  BarChart chart;
  chart.title = "ppl";
  chart.labels = {"a", "b", "c"};
  chart.values = {10.2, 10.5, 10.3};
  chart.from_zero = false;
  const Image im = bar_chart_render(chart);
  EXPECT_FALSE(has_text(im, "0"));  // no tick at zero
  std::vector<int64_t> centres;     // of the dots, in row order
  for (const auto& op : im.ops) {
    if (op.kind == DrawOp::Kind::rect && op.colour == plot_colour::bar) centres.push_back((op.x0 + op.x1) / 2);
  }
  ASSERT_EQ(centres.size(), 3u);
  EXPECT_LT(centres[0], centres[2]);
  EXPECT_LT(centres[2], centres[1]);
  EXPECT_GT(centres[1] - centres[0], 100);  // 0.3 of the range is far apart, not lost in a bar from 0
}

TEST(PngPlot, FixedAxisRangeIsHonoured) {
  BarChart a, b;
  a.title = b.title = "t";
  a.labels = b.labels = {"x"};
  a.values = {20};
  b.values = {20};
  b.lo = 0, b.hi = 100;
  const auto bar_width = [](const Image& im) {
    for (const auto& op : im.ops) {
      if (op.kind == DrawOp::Kind::rect && op.colour == plot_colour::bar) return op.x1 - op.x0;
    }
    return int64_t{0};
  };
  EXPECT_NEAR(static_cast<double>(bar_width(bar_chart_render(a))) / bar_width(bar_chart_render(b)), 5.0,
              0.2);  // a's axis ends at 20, b's at 100
}

TEST(PngPlot, SvgHasEveryShapeAndTextEscaped) {
  Image im = image_make(40, 20);
  image_fill(im, 1, 2, 11, 7, plot_colour::bar);
  image_line(im, 0, 0, 39, 19, plot_colour::marker, 2);
  image_text(im, 3, 4, "a<b & \"c\"", plot_colour::ink);
  image_text(im, 3, 18, "up", plot_colour::ink, 1, true);
  const std::string svg = svg_encode(image_hstack({image_make(10, 20), im}));
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"50\" height=\"20\"", 0), 0u) << svg;
  EXPECT_NE(svg.find("<rect x=\"11\" y=\"2\" width=\"10\" height=\"5\" fill=\"#5a7db4\"/>"), std::string::npos) << svg;
  EXPECT_NE(svg.find("<line x1=\"10.5\" y1=\"0.5\" x2=\"49.5\" y2=\"19.5\""), std::string::npos) << svg;
  EXPECT_NE(svg.find(">a&lt;b &amp; &quot;c&quot;</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find("translate(20 18) rotate(-90)"), std::string::npos) << svg;
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST(PngPlot, BarChartRejectsMismatchedLabels) {
  BarChart chart;
  chart.labels = {"a"};
  chart.values = {1.0, 2.0};
  EXPECT_THROW(bar_chart_render(chart), std::invalid_argument);
}

// Mean row of `c` pixels in column x, or -1.
double mean_row(const Decoded& d, int64_t x, Rgb c) {
  double sum = 0;
  int64_t n = 0;
  for (int64_t y = 0; y < d.height; ++y) {
    if (d.at(x, y) == c) sum += y, ++n;
  }
  return n ? sum / n : -1;
}

// The first and last column holding colour c.
std::pair<int64_t, int64_t> column_span(const Decoded& d, Rgb c) {
  int64_t lo = d.width, hi = -1;
  for (int64_t y = 0; y < d.height; ++y) {
    for (int64_t x = 0; x < d.width; ++x) {
      if (d.at(x, y) == c) lo = std::min(lo, x), hi = std::max(hi, x);
    }
  }
  return {lo, hi};
}

TEST(PngPlot, LogYPutsEachDecadeTheSameDistanceApart) {
  LineChart chart;
  chart.title = "loss";
  chart.series = {{"loss", {0, 1, 2}, {1, 10, 100}}};
  const Rgb c = plot_series_colour(0);
  for (bool log_y : {true, false}) {
    chart.log_y = log_y;
    const Decoded d = encode_decode(line_chart_render(chart));
    const auto [x0, x1] = column_span(d, c);
    ASSERT_LT(x0, x1);
    const double y_left = mean_row(d, x0 + 1, c), y_mid = mean_row(d, (x0 + x1) / 2, c),
                 y_right = mean_row(d, x1 - 1, c);
    EXPECT_GT(y_left, y_right);  // rising values go up
    const double mid_fraction = (y_left - y_mid) / (y_left - y_right);
    if (log_y) {
      EXPECT_NEAR(mid_fraction, 0.5, 0.03);
    } else {
      EXPECT_NEAR(mid_fraction, 9.0 / 99.0, 0.03);
    }
  }
}

TEST(PngPlot, LineChartSkipsNonPositiveValuesOnLogY) {
  LineChart chart;
  chart.log_y = true;
  chart.series = {{"a", {0, 1, 2, 3}, {0, 1, NAN, 10}}};
  const Decoded d = encode_decode(line_chart_render(chart));
  EXPECT_GE(column_span(d, plot_series_colour(0)).second, 0);
}

TEST(PngPlot, HistogramBarHeightsFollowCountsAndMarkerIsDrawn) {
  Histogram h;
  h.title = "scores";
  h.bins = 2;
  for (int i = 0; i < 10; ++i) h.values.push_back(0.1);
  for (int i = 0; i < 5; ++i) h.values.push_back(0.9);
  h.markers = {{0.5, "cut"}};
  const Decoded d = encode_decode(histogram_render(h));
  // Column heights of the bar colour: two plateaus, the first twice the second.
  std::map<int64_t, int64_t> heights;  // height -> columns
  for (int64_t x = 0; x < d.width; ++x) {
    int64_t n = 0;
    for (int64_t y = 0; y < d.height; ++y) n += d.at(x, y) == plot_colour::bar;
    if (n > 0) ++heights[n];
  }
  ASSERT_EQ(heights.size(), 2u);
  EXPECT_NEAR(static_cast<double>(heights.rbegin()->first) / heights.begin()->first, 2.0, 0.05);
  const auto [m0, m1] = column_span(d, plot_colour::marker);
  EXPECT_NEAR((m0 + m1) / 2.0, d.width * 0.5, d.width * 0.1);  // the line at 0.5, mid-plot (plus its label)
}

TEST(PngPlot, HeatmapCellColourRisesWithValue) {
  Heatmap hm;
  hm.title = "load";
  hm.row_labels = {"r0", "r1"};
  hm.col_labels = {"e0", "e1", "e2"};
  hm.values = {0, 1, 2, 3, 4, 5};
  const Decoded d = encode_decode(heatmap_render(hm));
  auto luminance = [](Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; };
  double previous = -1;
  for (int v = 0; v <= 5; ++v) {
    const Rgb c = plot_colour_scale(v / 5.0);
    EXPECT_GT(luminance(c), previous) << v;
    previous = luminance(c);
    // Each cell is a solid block of its colour (the colour bar adds at most a few rows).
    int64_t count = 0;
    for (int64_t y = 0; y < d.height; ++y)
      for (int64_t x = 0; x < d.width; ++x) count += d.at(x, y) == c;
    EXPECT_GE(count, 6 * 4) << "cell " << v;
  }
  // Row 0 holds 0, 1, 2 and row 1 holds 3, 4, 5: from the first cell, step by a cell's size.
  const Rgb first = plot_colour_scale(0);
  const auto runs = row_runs(d, first);
  int64_t y0 = 0;
  while (runs[y0] < 20) ++y0;  // the colour bar's bottom row is narrower than a cell
  int64_t x0 = 0;
  while (!(d.at(x0, y0) == first)) ++x0;
  int64_t cell_w = 0, cell_h = 0;
  while (d.at(x0 + cell_w, y0) == first) ++cell_w;
  while (d.at(x0, y0 + cell_h) == first) ++cell_h;
  EXPECT_GE(cell_w, 6);
  EXPECT_GE(cell_h, 4);
  EXPECT_EQ(d.at(x0 + cell_w, y0), plot_colour_scale(0.2));
  EXPECT_EQ(d.at(x0 + 2 * cell_w, y0), plot_colour_scale(0.4));
  EXPECT_EQ(d.at(x0, y0 + cell_h), plot_colour_scale(0.6));
  EXPECT_EQ(d.at(x0 + 2 * cell_w, y0 + cell_h), plot_colour_scale(1.0));
}

TEST(PngPlot, TicksAreRoundAndCoverTheRange) {
  const auto unit = plot_ticks(0, 1, 5);
  ASSERT_EQ(unit.size(), 6u);
  for (size_t k = 0; k < unit.size(); ++k) EXPECT_NEAR(unit[k], 0.2 * k, 1e-12);
  const auto t = plot_ticks(3.2, 97, 5);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t.front(), 20);
  EXPECT_EQ(t.back(), 80);
  EXPECT_EQ(plot_tick_label(0.25, 0.05), "0.25");
  EXPECT_EQ(plot_tick_label(40, 20), "40");
}

}  // namespace
}  // namespace kmoe
