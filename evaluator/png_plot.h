// PNG plots for the run report with no plotting library: an RGB raster, a PNG encoder
// (8-bit RGB, one zlib-compressed IDAT, CRCs from zlib's crc32), an embedded 5×7 ASCII
// font, and four charts (horizontal bars, lines, histogram, heatmap). Charts are plain
// structs rendered to an Image; the layout is fixed by the data so that a figure looks the
// same on every run. Scales are linear from zero for bars and histograms (a bar twice as
// long means a value twice as large), which the report's readers compare by eye.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kmoe {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// The colours charts draw with, so that tests and readers can tell the parts apart.
namespace plot_colour {
inline constexpr Rgb background{255, 255, 255};
inline constexpr Rgb ink{30, 30, 30};  // text, axes
inline constexpr Rgb grid{225, 225, 225};
inline constexpr Rgb bar{90, 125, 180};
inline constexpr Rgb highlight{230, 120, 30};
inline constexpr Rgb marker{200, 30, 40};
}  // namespace plot_colour

// Colour of line series i (a fixed palette, repeated).
Rgb plot_series_colour(size_t i);
// The heatmap scale: t in [0, 1] (clamped) from dark purple to yellow; luminance rises with t.
Rgb plot_colour_scale(double t);

// One drawing call, kept beside the pixels so that the same figure can be written as SVG
// (vector shapes, text in a real font) as well as PNG.
struct DrawOp {
  enum class Kind { rect, line, text } kind = Kind::rect;
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // rect: [x0, x1) x [y0, y1); line: its ends; text: x0, y0 as image_text
  Rgb colour;
  int size = 1;  // line thickness, text scale
  bool vertical = false;
  std::string text;
};

// An RGB raster, rows top to bottom: rgb [height, width, 3], and the calls that drew it.
struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::vector<DrawOp> ops;
  Rgb at(int64_t x, int64_t y) const;
};

Image image_make(int64_t width, int64_t height, Rgb fill = plot_colour::background);
// Fills [x0, x1) × [y0, y1), clipped to the image.
void image_fill(Image& image, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb colour);
// A straight line from (x0, y0) to (x1, y1), `thickness` pixels wide, clipped.
void image_line(Image& image, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb colour, int thickness = 1);
// Text in the 5×7 font (6 pixels per character at scale 1), top-left at (x, y); bytes
// outside printable ASCII are drawn as '?'. vertical: rotated 90° counter-clockwise,
// reading bottom to top, with (x, y) its bottom-left corner.
void image_text(Image& image, int64_t x, int64_t y, const std::string& text, Rgb colour, int scale = 1,
                bool vertical = false);
int64_t text_width(const std::string& text, int scale = 1);
inline constexpr int64_t kTextHeight = 7;
// Images side by side, top-aligned, on the background colour.
Image image_hstack(const std::vector<Image>& images);

// The image as a standalone SVG document drawn from its ops: rectangles and lines as
// shapes, text in a monospace font sized to the 5x7 font's layout (6 px per character).
std::string svg_encode(const Image& image);
// Text for XML and HTML: & < > " as entities.
std::string xml_escape(const std::string& text);

// PNG bytes of the image (8-bit RGB, filter type 0 on every row).
std::vector<uint8_t> png_encode(const Image& image);
// Writes PATH.tmp then renames it onto PATH, so a reader never sees a partial file.
void png_write(const std::string& path, const Image& image);

// Tick positions for [lo, hi]: about `target` round values (1, 2 or 5 × 10^k steps).
std::vector<double> plot_ticks(double lo, double hi, int target = 5);
// A tick label: as few digits as the step between ticks needs.
std::string plot_tick_label(double value, double step);

// One horizontal bar per label, from zero; a NaN value draws no bar and the text "n/a".
// Labels are drawn whole (up to 300 px; the chart widens for them). With from_zero false
// the axis spans the data alone and each value is a dot on a guide line, not a bar (a bar
// from an axis that does not start at zero would misstate ratios).
struct BarChart {
  std::string title, value_label;
  std::vector<std::string> labels;
  std::vector<double> values;
  std::vector<bool> highlight;  // empty, or one per bar: drawn in plot_colour::highlight
  std::vector<double> errors;   // empty, or one per bar: a whisker from value - e to value + e (e.g. sd)
  std::string highlight_label;  // the legend entry for highlighted bars ("" : no legend)
  bool from_zero = true;
  double lo = 0, hi = 0;  // lo < hi: this axis range (e.g. the same for several panels)
  int64_t width = 560;
};
Image bar_chart_render(const BarChart& chart);

struct LineSeries {
  std::string name;
  std::vector<double> x, y;  // same length; points with a non-finite y (or y <= 0 on log-y) are skipped
};
struct LineChart {
  std::string title, x_label, y_label;
  std::vector<LineSeries> series;
  bool log_y = false;
  int64_t width = 640, height = 400;
};
Image line_chart_render(const LineChart& chart);

// Counts of `values` in `bins` equal bins over [min, max]; vertical markers (a value and
// its legend text) drawn in plot_colour::marker.
struct Histogram {
  std::string title, x_label;
  std::vector<double> values;
  int64_t bins = 40;
  std::vector<std::pair<double, std::string>> markers;
  int64_t width = 640, height = 360;
};
Image histogram_render(const Histogram& histogram);

// values [rows, cols] row-major, coloured by plot_colour_scale from lo to hi (by default
// the data's min and max); a colour bar on the right, scale_label under the title.
struct Heatmap {
  std::string title, scale_label;
  std::vector<std::string> row_labels, col_labels;
  std::vector<double> values;
  double lo = 0, hi = 0;  // lo == hi: taken from the data
};
Image heatmap_render(const Heatmap& heatmap);

}  // namespace kmoe
