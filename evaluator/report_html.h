// The run report as one self-contained HTML page beside report.md: the same text and
// tables, and each plot drawn as inline SVG (vector shapes, text in a real font) instead of
// a PNG link, with the style sheet in the page; nothing beside it and nothing from the
// network is needed to view it.
#pragma once

#include <map>
#include <string>

namespace kmoe {

// `markdown` is the subset report.md is written in: "# "/"## " headings, paragraphs, pipe
// tables (a "---"/"---:" row after the header sets left/right alignment), image lines
// "![alt](FILE)", **bold**, `code`, and whole-line _italics_. Each image whose FILE is a key
// of `svg_by_file` becomes that SVG in a <figure> with the alt text as caption; any other
// image is an error (the page would not be self-contained).
std::string report_html(const std::string& markdown, const std::map<std::string, std::string>& svg_by_file,
                        const std::string& title);

}  // namespace kmoe
