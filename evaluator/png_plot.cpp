// See png_plot.h. Everything is integer pixel arithmetic on one RGB buffer; the charts share
// one frame (title, plot rectangle, ticks) and differ only in what they paint inside it.
#include "evaluator/png_plot.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace kmoe {

namespace {

// The classic 5×7 LCD glyphs for ASCII 32..126: five columns per glyph, bit 0 the top row;
// g, j, p, q and y use an eighth row (bit 7) as their descender.
constexpr uint8_t kFont[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5F, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00},
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, {0x24, 0x2A, 0x7F, 0x2A, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62},
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1C, 0x22, 0x41, 0x00},
    {0x00, 0x41, 0x22, 0x1C, 0x00}, {0x14, 0x08, 0x3E, 0x08, 0x14}, {0x08, 0x08, 0x3E, 0x08, 0x08},
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00},
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3E, 0x51, 0x49, 0x45, 0x3E}, {0x00, 0x42, 0x7F, 0x40, 0x00},
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4B, 0x31}, {0x18, 0x14, 0x12, 0x7F, 0x10},
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3C, 0x4A, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03},
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1E}, {0x00, 0x36, 0x36, 0x00, 0x00},
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14},
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3E},
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, {0x7F, 0x49, 0x49, 0x49, 0x36}, {0x3E, 0x41, 0x41, 0x41, 0x22},
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, {0x7F, 0x49, 0x49, 0x49, 0x41}, {0x7F, 0x09, 0x09, 0x09, 0x01},
    {0x3E, 0x41, 0x49, 0x49, 0x7A}, {0x7F, 0x08, 0x08, 0x08, 0x7F}, {0x00, 0x41, 0x7F, 0x41, 0x00},
    {0x20, 0x40, 0x41, 0x3F, 0x01}, {0x7F, 0x08, 0x14, 0x22, 0x41}, {0x7F, 0x40, 0x40, 0x40, 0x40},
    {0x7F, 0x02, 0x0C, 0x02, 0x7F}, {0x7F, 0x04, 0x08, 0x10, 0x7F}, {0x3E, 0x41, 0x41, 0x41, 0x3E},
    {0x7F, 0x09, 0x09, 0x09, 0x06}, {0x3E, 0x41, 0x51, 0x21, 0x5E}, {0x7F, 0x09, 0x19, 0x29, 0x46},
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7F, 0x01, 0x01}, {0x3F, 0x40, 0x40, 0x40, 0x3F},
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, {0x3F, 0x40, 0x38, 0x40, 0x3F}, {0x63, 0x14, 0x08, 0x14, 0x63},
    {0x07, 0x08, 0x70, 0x08, 0x07}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7F, 0x41, 0x41, 0x00},
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7F, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04},
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78},
    {0x7F, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7F},
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7E, 0x09, 0x01, 0x02}, {0x18, 0xA4, 0xA4, 0xA4, 0x78},
    {0x7F, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7D, 0x40, 0x00}, {0x40, 0x80, 0x80, 0x7A, 0x00},
    {0x7F, 0x10, 0x28, 0x44, 0x00}, {0x00, 0x41, 0x7F, 0x40, 0x00}, {0x7C, 0x04, 0x18, 0x04, 0x78},
    {0x7C, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0xFC, 0x24, 0x24, 0x24, 0x18},
    {0x18, 0x24, 0x24, 0x24, 0xFC}, {0x7C, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20},
    {0x04, 0x3F, 0x44, 0x40, 0x20}, {0x3C, 0x40, 0x40, 0x20, 0x7C}, {0x1C, 0x20, 0x40, 0x20, 0x1C},
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x1C, 0xA0, 0xA0, 0xA0, 0x7C},
    {0x44, 0x64, 0x54, 0x4C, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7F, 0x00, 0x00},
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x08, 0x04, 0x08, 0x10, 0x08},
};

constexpr int64_t kCharAdvance = 6;  // 5 columns + 1 of spacing

void raster_fill(Image& im, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c);

void put(Image& im, int64_t x, int64_t y, Rgb c) {
  if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
  uint8_t* p = &im.rgb[(y * im.width + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

std::string format_value(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Cuts text to at most `max_px` pixels wide, marking the cut with "..".
std::string fit_text(const std::string& text, int64_t max_px) {
  if (text_width(text) <= max_px) return text;
  const int64_t keep = std::max<int64_t>(0, max_px / kCharAdvance - 2);
  return text.substr(0, keep) + "..";
}

// The plot rectangle and a linear or log10 map from data to pixels.
struct Axis {
  double lo = 0, hi = 1;   // data range (log10 of it when log)
  int64_t p0 = 0, p1 = 1;  // pixel of lo and of hi
  bool log = false;
  double pixel(double v) const {
    const double t = ((log ? std::log10(v) : v) - lo) / (hi - lo);
    return p0 + t * static_cast<double>(p1 - p0);
  }
};

void draw_title(Image& im, const std::string& title) {
  image_text(im, std::max<int64_t>(4, (im.width - text_width(title, 2)) / 2), 6, fit_text(title, im.width / 2 - 8),
             plot_colour::ink, 2);
}

// Ticks and grid lines of a horizontal value axis (x) at pixel row `y` for plot rows [top, y).
void draw_x_axis(Image& im, const Axis& ax, int64_t top, int64_t y, int target) {
  const auto ticks = plot_ticks(ax.lo, ax.hi, target);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  for (double t : ticks) {
    const auto px = static_cast<int64_t>(std::lround(ax.pixel(t)));
    image_fill(im, px, top, px + 1, y, plot_colour::grid);
    image_fill(im, px, y, px + 1, y + 4, plot_colour::ink);
    const std::string label = plot_tick_label(t, step);
    image_text(im, px - text_width(label) / 2, y + 6, label, plot_colour::ink);
  }
  image_fill(im, std::min(ax.p0, ax.p1), y, std::max(ax.p0, ax.p1) + 1, y + 1, plot_colour::ink);
}

// Ticks and grid of a vertical value axis at pixel column `x` for plot columns (x, right].
void draw_y_axis(Image& im, const Axis& ax, int64_t x, int64_t right) {
  std::vector<double> ticks, values;
  double step = 1.0;
  if (ax.log) {
    for (double e = std::floor(ax.lo); e <= std::ceil(ax.hi); e += 1) {
      const double decades = ax.hi - ax.lo;
      for (double m : decades < 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double v = m * std::pow(10.0, e);
        const double l = std::log10(v);
        if (l >= ax.lo - 1e-9 && l <= ax.hi + 1e-9) values.push_back(v);
      }
    }
  } else {
    values = plot_ticks(ax.lo, ax.hi, 5);
    if (values.size() > 1) step = values[1] - values[0];
  }
  for (double v : values) {
    const auto py = static_cast<int64_t>(std::lround(ax.pixel(v)));
    image_fill(im, x + 1, py, right, py + 1, plot_colour::grid);
    image_fill(im, x - 4, py, x, py + 1, plot_colour::ink);
    const std::string label = ax.log ? format_value(v) : plot_tick_label(v, step);
    image_text(im, x - 6 - text_width(label), py - kTextHeight / 2, label, plot_colour::ink);
  }
  image_fill(im, x, std::min(ax.p0, ax.p1), x + 1, std::max(ax.p0, ax.p1) + 1, plot_colour::ink);
}

}  // namespace

Rgb plot_series_colour(size_t i) {
  static constexpr Rgb palette[] = {{31, 119, 180},  {214, 39, 40}, {44, 160, 44},
                                    {148, 103, 189}, {140, 86, 75}, {23, 190, 207}};
  return palette[i % (sizeof palette / sizeof palette[0])];
}

Rgb plot_colour_scale(double t) {
  // Five stops close to viridis; piecewise linear between them.
  static constexpr double stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * 4.0;
  const int k = std::min(3, static_cast<int>(t));
  const double f = t - k;
  auto mix = [&](int c) {
    return static_cast<uint8_t>(std::lround(stops[k][c] + f * (stops[k + 1][c] - stops[k][c])));
  };
  return {mix(0), mix(1), mix(2)};
}

Rgb Image::at(int64_t x, int64_t y) const {
  if (x < 0 || y < 0 || x >= width || y >= height) throw std::out_of_range("Image::at outside the image");
  const uint8_t* p = &rgb[(y * width + x) * 3];
  return {p[0], p[1], p[2]};
}

namespace {

void raster_fill(Image& im, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  x0 = std::max<int64_t>(0, x0), y0 = std::max<int64_t>(0, y0);
  x1 = std::min(im.width, x1), y1 = std::min(im.height, y1);
  for (int64_t y = y0; y < y1; ++y)
    for (int64_t x = x0; x < x1; ++x) put(im, x, y, c);
}

}  // namespace

Image image_make(int64_t width, int64_t height, Rgb fill) {
  if (width <= 0 || height <= 0 || width > 16384 || height > 16384) {
    throw std::invalid_argument("image_make: size " + std::to_string(width) + " x " + std::to_string(height) +
                                " is outside 1..16384");
  }
  Image im;
  im.width = width;
  im.height = height;
  im.rgb.resize(width * height * 3);
  for (int64_t i = 0; i < width * height; ++i) {
    im.rgb[3 * i] = fill.r;
    im.rgb[3 * i + 1] = fill.g;
    im.rgb[3 * i + 2] = fill.b;
  }
  im.ops.push_back({DrawOp::Kind::rect, 0, 0, width, height, fill, 1, false, {}});
  return im;
}

void image_fill(Image& im, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  if (x1 > x0 && y1 > y0) im.ops.push_back({DrawOp::Kind::rect, x0, y0, x1, y1, c, 1, false, {}});
  raster_fill(im, x0, y0, x1, y1, c);
}

void image_line(Image& im, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c, int thickness) {
  im.ops.push_back({DrawOp::Kind::line, x0, y0, x1, y1, c, thickness, false, {}});
  // Bresenham; a thick line stamps a square of `thickness` pixels at every step.
  const int64_t dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int64_t sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  const int64_t lo = -(thickness - 1) / 2, hi = thickness / 2;
  int64_t err = dx + dy;
  while (true) {
    raster_fill(im, x0 + lo, y0 + lo, x0 + hi + 1, y0 + hi + 1, c);
    if (x0 == x1 && y0 == y1) break;
    const int64_t e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

int64_t text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (static_cast<int64_t>(text.size()) * kCharAdvance - 1) * scale;
}

void image_text(Image& im, int64_t x, int64_t y, const std::string& text, Rgb c, int scale, bool vertical) {
  if (!text.empty()) {
    DrawOp op{DrawOp::Kind::text, x, y, x, y, c, scale, vertical, {}};
    op.text = text;
    im.ops.push_back(std::move(op));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto ch = static_cast<unsigned char>(text[i]);
    const uint8_t* glyph = kFont[(ch >= 32 && ch <= 126 ? ch : '?') - 32];
    for (int64_t col = 0; col < 5; ++col) {
      for (int64_t row = 0; row < 8; ++row) {
        if (!(glyph[col] >> row & 1)) continue;
        const int64_t u = (static_cast<int64_t>(i) * kCharAdvance + col) * scale, v = row * scale;
        if (vertical) {
          raster_fill(im, x + v, y - u - scale, x + v + scale, y - u, c);
        } else {
          raster_fill(im, x + u, y + v, x + u + scale, y + v + scale, c);
        }
      }
    }
  }
}

Image image_hstack(const std::vector<Image>& images) {
  int64_t w = 0, h = 1;
  for (const auto& im : images) w += im.width, h = std::max(h, im.height);
  Image out = image_make(std::max<int64_t>(1, w), h);
  int64_t x0 = 0;
  for (const auto& im : images) {
    for (int64_t y = 0; y < im.height; ++y) {
      std::copy_n(&im.rgb[y * im.width * 3], im.width * 3, &out.rgb[(y * out.width + x0) * 3]);
    }
    for (DrawOp op : im.ops) {
      op.x0 += x0, op.x1 += x0;
      out.ops.push_back(std::move(op));
    }
    x0 += im.width;
  }
  return out;
}

namespace {

std::string svg_colour(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string svg_encode(const Image& im) {
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(im.width) + "\" height=\"" +
                  std::to_string(im.height) + "\" viewBox=\"0 0 " + std::to_string(im.width) + " " +
                  std::to_string(im.height) +
                  "\" font-family=\"'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace\">\n";
  for (const DrawOp& op : im.ops) {
    const std::string colour = svg_colour(op.colour);
    switch (op.kind) {
      case DrawOp::Kind::rect:
        s += "<rect x=\"" + std::to_string(op.x0) + "\" y=\"" + std::to_string(op.y0) + "\" width=\"" +
             std::to_string(op.x1 - op.x0) + "\" height=\"" + std::to_string(op.y1 - op.y0) + "\" fill=\"" + colour +
             "\"/>\n";
        break;
      case DrawOp::Kind::line: {
        // The raster line covers pixel centres: draw through x + 0.5.
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%d\" "
                      "stroke-linecap=\"round\"/>\n",
                      op.x0 + 0.5, op.y0 + 0.5, op.x1 + 0.5, op.y1 + 0.5, colour.c_str(), op.size);
        s += buf;
        break;
      }
      case DrawOp::Kind::text: {
        // 10 px monospace advances 6 px a character and has 7 px capitals, as the 5x7 font;
        // the raster text's top is at y, so the baseline is 7 px lower (scaled).
        const int64_t base = 7 * op.size;
        const std::string size = std::to_string(10 * op.size);
        if (op.vertical) {
          s += "<text transform=\"translate(" + std::to_string(op.x0 + base) + " " + std::to_string(op.y0) +
               ") rotate(-90)\" font-size=\"" + size + "\" fill=\"" + colour + "\">" + xml_escape(op.text) +
               "</text>\n";
        } else {
          s += "<text x=\"" + std::to_string(op.x0) + "\" y=\"" + std::to_string(op.y0 + base) + "\" font-size=\"" +
               size + "\" fill=\"" + colour + "\">" + xml_escape(op.text) + "</text>\n";
        }
        break;
      }
    }
  }
  return s + "</svg>\n";
}

namespace {

void append_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void append_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  append_u32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, out.data() + start, static_cast<uInt>(out.size() - start));
  append_u32(out, static_cast<uint32_t>(crc));
}

}  // namespace

std::vector<uint8_t> png_encode(const Image& im) {
  if (im.width <= 0 || im.height <= 0 || im.rgb.size() != static_cast<size_t>(im.width * im.height * 3)) {
    throw std::invalid_argument("png_encode: image buffer does not match its size");
  }
  std::vector<uint8_t> raw;
  raw.reserve(im.height * (im.width * 3 + 1));
  for (int64_t y = 0; y < im.height; ++y) {
    raw.push_back(0);  // filter type None
    raw.insert(raw.end(), im.rgb.begin() + y * im.width * 3, im.rgb.begin() + (y + 1) * im.width * 3);
  }
  uLongf size = compressBound(raw.size());
  std::vector<uint8_t> idat(size);
  if (compress2(idat.data(), &size, raw.data(), raw.size(), 6) != Z_OK) {
    throw std::runtime_error("png_encode: zlib compression failed");
  }
  idat.resize(size);
  std::vector<uint8_t> ihdr;
  append_u32(ihdr, static_cast<uint32_t>(im.width));
  append_u32(ihdr, static_cast<uint32_t>(im.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8 bits, RGB, deflate, adaptive filtering, no interlace
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  append_chunk(out, "IHDR", ihdr);
  append_chunk(out, "IDAT", idat);
  append_chunk(out, "IEND", {});
  return out;
}

void png_write(const std::string& path, const Image& image) {
  const auto bytes = png_encode(image);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f.flush()) {
      std::filesystem::remove(tmp);
      throw std::runtime_error(tmp + ": cannot write the PNG");
    }
  }
  std::filesystem::rename(tmp, path);
}

std::vector<double> plot_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> out;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
    const double v = k * step;
    out.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return out;
}

std::string plot_tick_label(double value, double step) {
  char buf[32];
  const double a = std::abs(value);
  if (a != 0 && (a >= 1e6 || a < 1e-4)) {
    std::snprintf(buf, sizeof buf, "%.2g", value);
  } else {
    const int decimals = step > 0 ? std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6) : 3;
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  }
  return buf;
}

Image bar_chart_render(const BarChart& chart) {
  const int64_t n = static_cast<int64_t>(chart.values.size());
  if (static_cast<int64_t>(chart.labels.size()) != n) {
    throw std::invalid_argument("bar chart '" + chart.title + "': " + std::to_string(chart.labels.size()) +
                                " labels for " + std::to_string(n) + " values");
  }
  if (!chart.highlight.empty() && static_cast<int64_t>(chart.highlight.size()) != n) {
    throw std::invalid_argument("bar chart '" + chart.title + "': highlight has " +
                                std::to_string(chart.highlight.size()) + " entries for " + std::to_string(n) + " bars");
  }
  if (!chart.errors.empty() && static_cast<int64_t>(chart.errors.size()) != n) {
    throw std::invalid_argument("bar chart '" + chart.title + "': errors has " + std::to_string(chart.errors.size()) +
                                " entries for " + std::to_string(n) + " bars");
  }
  constexpr int64_t row_h = 14, bar_h = 10, top = 32, value_room = 44, min_plot_w = 240;
  int64_t label_w = 0;
  for (const auto& l : chart.labels) label_w = std::max(label_w, text_width(l));
  label_w = std::min<int64_t>(label_w, 300) + 8;
  const int64_t width = std::max(chart.width, label_w + min_plot_w + value_room);
  const bool legend = !chart.highlight_label.empty() && !chart.highlight.empty();
  const int64_t height = top + std::max<int64_t>(1, n) * row_h + 36 + (legend ? 14 : 0);
  Image im = image_make(width, height);
  draw_title(im, chart.title);

  double lo = chart.from_zero ? 0 : std::numeric_limits<double>::infinity();
  double hi = chart.from_zero ? 0 : -std::numeric_limits<double>::infinity();
  for (double v : chart.values) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi == lo) hi = lo + 1;
  if (chart.lo < chart.hi) {
    lo = chart.lo, hi = chart.hi;
  } else {
    // Extend to the outer ticks so that the axis ends on a labelled value.
    const auto ticks = plot_ticks(lo, hi, 4);
    const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : hi - lo;
    if (!ticks.empty() && ticks.back() < hi) hi = ticks.back() + step;
    if (!ticks.empty() && ticks.front() > lo) lo = ticks.front() - step;
  }
  Axis ax{lo, hi, label_w, width - value_room, false};
  const int64_t axis_y = top + n * row_h + 2;
  draw_x_axis(im, ax, top, axis_y, 4);
  const auto zero = static_cast<int64_t>(std::lround(ax.pixel(chart.from_zero ? 0 : lo)));
  if (chart.from_zero) image_fill(im, zero, top, zero + 1, axis_y, plot_colour::ink);  // bars start at zero
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = top + i * row_h + (row_h - bar_h) / 2;
    const std::string label = fit_text(chart.labels[i], label_w - 8);
    image_text(im, label_w - 4 - text_width(label), y + 1, label, plot_colour::ink);
    const double v = chart.values[i];
    if (!std::isfinite(v)) {
      image_text(im, zero + 3, y + 1, "n/a", plot_colour::ink);
      continue;
    }
    const auto end = std::clamp<int64_t>(std::lround(ax.pixel(v)), label_w, width - value_room);
    const Rgb colour = !chart.highlight.empty() && chart.highlight[i] ? plot_colour::highlight : plot_colour::bar;
    if (chart.from_zero) {
      image_fill(im, std::min(zero, end), y, std::max(zero, end), y + bar_h, colour);
    } else {
      image_fill(im, label_w, y + bar_h / 2, end, y + bar_h / 2 + 1, plot_colour::grid);
      image_fill(im, end - 3, y + 2, end + 4, y + bar_h - 1, colour);
    }
    // A dot's label carries the digits that tell neighbours apart (a tenth of a tick step).
    const auto ticks = plot_ticks(lo, hi, 4);
    const std::string text =
        chart.from_zero || ticks.size() < 2 ? format_value(v) : plot_tick_label(v, (ticks[1] - ticks[0]) / 10);
    int64_t text_x = std::max(zero, end) + 5;
    const double e = chart.errors.empty() ? 0 : chart.errors[i];
    if (std::isfinite(e) && e > 0) {  // the whisker: a line with end caps, in ink over the bar
      const auto x0 = std::clamp<int64_t>(std::lround(ax.pixel(v - e)), label_w, width - value_room);
      const auto x1 = std::clamp<int64_t>(std::lround(ax.pixel(v + e)), label_w, width - value_room);
      const int64_t mid = y + bar_h / 2;
      image_fill(im, x0, mid, x1 + 1, mid + 1, plot_colour::ink);
      image_fill(im, x0, y + 1, x0 + 1, y + bar_h - 1, plot_colour::ink);
      image_fill(im, x1, y + 1, x1 + 1, y + bar_h - 1, plot_colour::ink);
      text_x = std::max(text_x, x1 + 5);
    }
    image_text(im, text_x, y + 1, text, plot_colour::ink);
  }
  image_text(im, (label_w + width - value_room - text_width(chart.value_label)) / 2, axis_y + 18, chart.value_label,
             plot_colour::ink);
  if (legend) {
    const int64_t ly = axis_y + 32;
    int64_t lx = label_w;
    for (const auto& [colour, text] : {std::pair{plot_colour::highlight, chart.highlight_label},
                                       std::pair{plot_colour::bar, std::string("other")}}) {
      image_fill(im, lx, ly, lx + 10, ly + 8, colour);
      image_text(im, lx + 14, ly + 1, text, plot_colour::ink);
      lx += 14 + text_width(text) + 16;
    }
  }
  return im;
}

Image line_chart_render(const LineChart& chart) {
  constexpr int64_t left = 70, right = 16, top = 34, bottom = 44;
  Image im = image_make(chart.width, chart.height);
  draw_title(im, chart.title);
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!chart.log_y || y > 0); };
  for (const auto& s : chart.series) {
    if (s.x.size() != s.y.size()) {
      throw std::invalid_argument("line chart '" + chart.title + "': series '" + s.name + "' has " +
                                  std::to_string(s.x.size()) + " x and " + std::to_string(s.y.size()) + " y values");
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      const double y = chart.log_y ? std::log10(s.y[i]) : s.y[i];
      xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    }
  }
  if (!(xlo <= xhi)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;  // nothing to draw: an empty frame
  if (xhi == xlo) xlo -= 0.5, xhi += 0.5;
  if (yhi == ylo) ylo -= 0.5, yhi += 0.5;
  const double pad = 0.05 * (yhi - ylo);
  ylo -= pad, yhi += pad;
  const int64_t x0 = left, x1 = chart.width - right, y0 = chart.height - bottom, y1 = top;
  Axis ax{xlo, xhi, x0, x1, false}, ay{ylo, yhi, y0, y1, chart.log_y};
  draw_y_axis(im, ay, x0, x1);
  draw_x_axis(im, ax, y1, y0, 6);
  image_text(im, (x0 + x1 - text_width(chart.x_label)) / 2, y0 + 22, chart.x_label, plot_colour::ink);
  image_text(im, 6, (y0 + y1 + text_width(chart.y_label)) / 2, chart.y_label, plot_colour::ink, 1, true);
  int64_t legend_y = top + 6;
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const auto& s = chart.series[k];
    const Rgb c = plot_series_colour(k);
    bool have = false;
    int64_t px = 0, py = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      const auto qx = static_cast<int64_t>(std::lround(ax.pixel(s.x[i])));
      const auto qy = static_cast<int64_t>(std::lround(ay.pixel(s.y[i])));
      if (have)
        image_line(im, px, py, qx, qy, c, 2);
      else
        image_fill(im, qx - 1, qy - 1, qx + 1, qy + 1, c);
      px = qx, py = qy, have = true;
    }
    if (!s.name.empty() && chart.series.size() > 1) {
      const int64_t lx = x1 - 8 - text_width(s.name) - 16;
      image_fill(im, lx, legend_y + 3, lx + 12, legend_y + 5, c);
      image_text(im, lx + 16, legend_y, s.name, plot_colour::ink);
      legend_y += 12;
    }
  }
  return im;
}

Image histogram_render(const Histogram& h) {
  if (h.bins < 1) throw std::invalid_argument("histogram '" + h.title + "': bins must be >= 1");
  constexpr int64_t left = 60, right = 16, top = 34, bottom = 44;
  Image im = image_make(h.width, h.height);
  draw_title(im, h.title);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : h.values) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  for (const auto& [v, label] : h.markers) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi == lo) lo -= 0.5, hi += 0.5;
  std::vector<int64_t> counts(h.bins, 0);
  for (double v : h.values) {
    if (!std::isfinite(v)) continue;
    const auto b = static_cast<int64_t>((v - lo) / (hi - lo) * static_cast<double>(h.bins));
    ++counts[std::clamp<int64_t>(b, 0, h.bins - 1)];
  }
  const int64_t max_count = std::max<int64_t>(1, *std::max_element(counts.begin(), counts.end()));
  const auto yticks = plot_ticks(0, static_cast<double>(max_count), 4);
  const double ytop = yticks.size() > 1 && yticks.back() < max_count ? yticks.back() + (yticks[1] - yticks[0])
                                                                     : static_cast<double>(max_count);
  const int64_t x0 = left, x1 = h.width - right, y0 = h.height - bottom, y1 = top;
  Axis ax{lo, hi, x0, x1, false}, ay{0, ytop, y0, y1, false};
  draw_y_axis(im, ay, x0, x1);
  for (int64_t b = 0; b < h.bins; ++b) {
    const auto bx0 = static_cast<int64_t>(std::lround(x0 + static_cast<double>(b) * (x1 - x0) / h.bins));
    const auto bx1 = static_cast<int64_t>(std::lround(x0 + static_cast<double>(b + 1) * (x1 - x0) / h.bins));
    const auto by = static_cast<int64_t>(std::lround(ay.pixel(static_cast<double>(counts[b]))));
    image_fill(im, bx0 + 1, by, std::max(bx0 + 2, bx1), y0, plot_colour::bar);
  }
  draw_x_axis(im, ax, y0, y0, 6);
  image_text(im, (x0 + x1 - text_width(h.x_label)) / 2, y0 + 22, h.x_label, plot_colour::ink);
  image_text(im, 6, (y0 + y1 + text_width("count")) / 2, "count", plot_colour::ink, 1, true);
  int64_t label_y = top + 4;
  for (const auto& [v, label] : h.markers) {
    if (!std::isfinite(v)) continue;
    const auto px = static_cast<int64_t>(std::lround(ax.pixel(v)));
    image_fill(im, px - 1, y1, px + 1, y0, plot_colour::marker);
    const int64_t tx = px + 4 + text_width(label) < x1 ? px + 4 : px - 4 - text_width(label);
    image_text(im, tx, label_y, label, plot_colour::marker);
    label_y += 12;
  }
  return im;
}

Image heatmap_render(const Heatmap& hm) {
  const int64_t rows = static_cast<int64_t>(hm.row_labels.size()), cols = static_cast<int64_t>(hm.col_labels.size());
  if (rows < 1 || cols < 1 || static_cast<int64_t>(hm.values.size()) != rows * cols) {
    throw std::invalid_argument("heatmap '" + hm.title + "': " + std::to_string(hm.values.size()) + " values for " +
                                std::to_string(rows) + " rows x " + std::to_string(cols) + " columns");
  }
  const int64_t cell_w = std::clamp<int64_t>(560 / cols, 6, 48), cell_h = std::clamp<int64_t>(480 / rows, 4, 24);
  int64_t row_label_w = 0, col_label_w = 0;
  for (const auto& l : hm.row_labels) row_label_w = std::max(row_label_w, text_width(l));
  for (const auto& l : hm.col_labels) col_label_w = std::max(col_label_w, text_width(l));
  row_label_w = std::min<int64_t>(row_label_w, 200) + 8;
  const bool cols_vertical = col_label_w + 4 > cell_w;
  const int64_t col_label_h = cols_vertical ? std::min<int64_t>(col_label_w, 120) + 6 : kTextHeight + 6;
  constexpr int64_t scale_w = 14;
  const std::string subtitle = hm.scale_label.empty() ? "" : "colour: " + hm.scale_label;
  const int64_t top = subtitle.empty() ? 34 : 48;
  const int64_t grid_x = row_label_w, grid_y = top, grid_w = cols * cell_w, grid_h = rows * cell_h;
  const int64_t width =
      std::max({grid_x + grid_w + 24 + scale_w + 60, text_width(hm.title, 2) + 16, text_width(subtitle) + 16});
  const int64_t height = grid_y + std::max<int64_t>(grid_h, 80) + col_label_h + 10;
  Image im = image_make(width, height);
  draw_title(im, hm.title);
  image_text(im, (width - text_width(subtitle)) / 2, 30, subtitle, plot_colour::ink);

  double lo = hm.lo, hi = hm.hi;
  if (lo == hi) {
    lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double v : hm.values) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (lo == hi) hi = lo + 1;
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double v = hm.values[r * cols + c];
      const Rgb colour = std::isfinite(v) ? plot_colour_scale((v - lo) / (hi - lo)) : plot_colour::grid;
      image_fill(im, grid_x + c * cell_w, grid_y + r * cell_h, grid_x + (c + 1) * cell_w, grid_y + (r + 1) * cell_h,
                 colour);
    }
  }
  // Labels: every row and column when they fit, else every k-th.
  const int64_t row_every = (kTextHeight + 1 + cell_h - 1) / cell_h;
  for (int64_t r = 0; r < rows; r += row_every) {
    const std::string l = fit_text(hm.row_labels[r], row_label_w - 8);
    image_text(im, grid_x - 4 - text_width(l), grid_y + r * cell_h + (cell_h - kTextHeight) / 2, l, plot_colour::ink);
  }
  const int64_t col_every = cols_vertical ? (kTextHeight + 1 + cell_w - 1) / cell_w : 1;
  for (int64_t c = 0; c < cols; c += col_every) {
    if (cols_vertical) {
      const std::string l = fit_text(hm.col_labels[c], col_label_h - 6);
      image_text(im, grid_x + c * cell_w + (cell_w - kTextHeight) / 2, grid_y + grid_h + 4 + text_width(l), l,
                 plot_colour::ink, 1, true);
    } else {
      const std::string& l = hm.col_labels[c];
      image_text(im, grid_x + c * cell_w + (cell_w - text_width(l)) / 2, grid_y + grid_h + 4, l, plot_colour::ink);
    }
  }
  // The colour bar: hi at the top, lo at the bottom.
  const int64_t sx = grid_x + grid_w + 16, bar_h = std::max<int64_t>(grid_h, 80);
  for (int64_t y = 0; y < bar_h; ++y) {
    const double t = 1.0 - static_cast<double>(y) / static_cast<double>(std::max<int64_t>(1, bar_h - 1));
    image_fill(im, sx, grid_y + y, sx + scale_w, grid_y + y + 1, plot_colour_scale(t));
  }
  image_text(im, sx + scale_w + 4, grid_y, format_value(hi), plot_colour::ink);
  image_text(im, sx + scale_w + 4, grid_y + bar_h - kTextHeight, format_value(lo), plot_colour::ink);
  return im;
}

}  // namespace kmoe
