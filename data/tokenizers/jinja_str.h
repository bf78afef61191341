// Internal to the Jinja interpreter (the public header is jinja.h): Python's str methods on
// UTF-8 text and the jinja2 text filters built on them, with the code-point case mappings, for
// the tree walker's filters, tests and methods (jinja_str.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizers/jinja_value.h"

namespace kmoe::jinja::detail {

// Case mappings for the scripts chat text is mostly in (ASCII, Latin-1, Latin Extended-A,
// Greek, Cyrillic); other code points count as uncased, as CJK and most symbols are.
char32_t to_upper_cp(char32_t c);
char32_t to_lower_cp(char32_t c);
bool cased(char32_t c);
// Refuses (Unsupported) `what` of text with a code point whose case kmoe does not map as Python.
void check_case(const std::u32string& s, const char* what);

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);     // str.title()
std::string jinja_title(const std::string& s);  // the title filter: words start after [-\s({\[<]+
int64_t py_count(const std::string& s, const std::string& sub);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count);
List py_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right);
std::vector<std::u32string> py_splitlines(const std::u32string& s, bool keepends);
std::string html_escape(const std::string& s);
// Python's int(str, base) after jinja2's |int: whitespace and underscores allowed.
std::optional<int64_t> parse_int(const std::string& text, int base);
std::optional<double> parse_float(const std::string& text);

}  // namespace kmoe::jinja::detail
