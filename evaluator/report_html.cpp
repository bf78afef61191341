// See report_html.h. A line-by-line converter for the Markdown the report writes, not a
// Markdown implementation: anything else it meets is written as a paragraph, escaped.
#include "evaluator/report_html.h"

#include <sstream>
#include <stdexcept>
#include <vector>

#include "evaluator/png_plot.h"

namespace kmoe {

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// `code` and **bold** inside a line, the rest escaped. Underscores are left alone: names
// such as acc_ll are full of them.
std::string inline_html(const std::string& text) {
  std::string out;
  bool code = false, bold = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else if (!code && text.compare(i, 2, "**") == 0) {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else {
      out += xml_escape(std::string(1, text[i]));
    }
  }
  if (code) out += "</code>";
  if (bold) out += "</strong>";
  return out;
}

std::vector<std::string> table_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string t = trim(line);
  if (!t.empty() && t.front() == '|') t.erase(0, 1);
  if (!t.empty() && t.back() == '|') t.pop_back();
  std::stringstream s(t);
  for (std::string c; std::getline(s, c, '|');) cells.push_back(trim(c));
  return cells;
}

const char* kStyle =
    "body{font-family:'DejaVu Sans','Liberation Sans',Arial,Helvetica,sans-serif;max-width:1400px;margin:2em auto;"
    "padding:0 1.5em;color:#1e1e1e;line-height:1.45}"
    "h1{font-size:1.7em;border-bottom:2px solid #5a7db4;padding-bottom:.2em}"
    "h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.15em}"
    "table{border-collapse:collapse;margin:.8em 0;font-size:.9em}"
    "th,td{border:1px solid #d0d0d0;padding:.25em .6em}th{background:#eef2f8}"
    "td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafafa}"
    "code{font-family:'DejaVu Sans Mono','Liberation Mono',monospace;font-size:.9em;background:#f3f3f3;"
    "padding:0 .2em}figure{margin:1em 0}figure svg{max-width:100%;height:auto}"
    "figcaption{font-size:.85em;color:#555;margin-top:.3em}p.note{color:#666;font-style:italic}";

}  // namespace

std::string report_html(const std::string& markdown, const std::map<std::string, std::string>& svg_by_file,
                        const std::string& title) {
  std::vector<std::string> lines;
  {
    std::stringstream s(markdown);
    for (std::string l; std::getline(s, l);) lines.push_back(l);
  }
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << xml_escape(title)
    << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  std::string paragraph;
  const auto flush = [&] {
    if (!paragraph.empty()) h << "<p>" << inline_html(paragraph) << "</p>\n";
    paragraph.clear();
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string line = trim(lines[i]);
    if (line.empty()) {
      flush();
    } else if (line.rfind("# ", 0) == 0 || line.rfind("## ", 0) == 0) {
      flush();
      const int level = line[1] == '#' ? 2 : 1;
      h << "<h" << level << ">" << inline_html(line.substr(level + 1)) << "</h" << level << ">\n";
    } else if (line.rfind("![", 0) == 0) {
      flush();
      const size_t close = line.find("](");
      if (close == std::string::npos || line.back() != ')')
        throw std::invalid_argument("report: malformed image line '" + line + "'");
      const std::string alt = line.substr(2, close - 2), file = line.substr(close + 2, line.size() - close - 3);
      const auto svg = svg_by_file.find(file);
      if (svg == svg_by_file.end()) throw std::invalid_argument("report: no SVG for the plot " + file);
      h << "<figure>\n" << svg->second << "<figcaption>" << inline_html(alt) << "</figcaption>\n</figure>\n";
    } else if (line.front() == '|' && i + 1 < lines.size() && trim(lines[i + 1]).rfind("| ---", 0) == 0) {
      flush();
      const auto head = table_cells(line);
      std::vector<bool> right;
      for (const auto& c : table_cells(lines[i + 1])) right.push_back(!c.empty() && c.back() == ':');
      right.resize(head.size(), false);
      h << "<table>\n<thead><tr>";
      for (size_t c = 0; c < head.size(); ++c)
        h << "<th" << (right[c] ? " class=\"r\"" : "") << ">" << inline_html(head[c]) << "</th>";
      h << "</tr></thead>\n<tbody>\n";
      for (i += 2; i < lines.size() && trim(lines[i]).rfind("|", 0) == 0; ++i) {
        const auto cells = table_cells(lines[i]);
        h << "<tr>";
        for (size_t c = 0; c < cells.size(); ++c)
          h << "<td" << (c < right.size() && right[c] ? " class=\"r\"" : "") << ">" << inline_html(cells[c]) << "</td>";
        h << "</tr>\n";
      }
      --i;
      h << "</tbody>\n</table>\n";
    } else if (line.size() > 2 && line.front() == '_' && line.back() == '_') {
      flush();
      h << "<p class=\"note\">" << inline_html(line.substr(1, line.size() - 2)) << "</p>\n";
    } else {
      paragraph += (paragraph.empty() ? "" : " ") + line;
    }
  }
  flush();
  h << "</body>\n</html>\n";
  return h.str();
}

}  // namespace kmoe
