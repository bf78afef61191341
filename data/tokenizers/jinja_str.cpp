// Python's str methods on UTF-8 text, and the jinja2 text filters built on them: strip, upper,
// lower, capitalize, title, count, replace, split, splitlines, escape, int() and float() parsing,
// with the code-point case mappings they share. Apart from the value model because it is a
// library of text functions, not part of what a value is.
#include "data/tokenizers/jinja_str.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace kmoe::jinja::detail {

// Case mappings for the scripts chat text is mostly in (ASCII, Latin-1, Latin Extended-A,
// Greek, Cyrillic); other code points count as uncased, as CJK and most symbols are.
char32_t to_upper_cp(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
  if (c == 0xff) return 0x178;
  if (c == 0xb5) return 0x39c;
  if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
    const bool pair_even = (c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177);
    if (pair_even) return (c % 2 == 1) ? c - 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c % 2 == 0) ? c - 1 : c;
    return c;
  }
  if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
  if (c == 0x3c2) return 0x3a3;
  if (c >= 0x3ac && c <= 0x3ce) {
    switch (c) {
      case 0x3ac:
        return 0x386;
      case 0x3ad:
        return 0x388;
      case 0x3ae:
        return 0x389;
      case 0x3af:
        return 0x38a;
      case 0x3cc:
        return 0x38c;
      case 0x3cd:
        return 0x38e;
      case 0x3ce:
        return 0x38f;
      default:
        return c;
    }
  }
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  return c;
}

char32_t to_lower_cp(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
  if (c == 0x178) return 0xff;
  if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
    const bool pair_even = (c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177);
    if (pair_even) return (c % 2 == 0) ? c + 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
  switch (c) {
    case 0x386:
      return 0x3ac;
    case 0x388:
      return 0x3ad;
    case 0x389:
      return 0x3ae;
    case 0x38a:
      return 0x3af;
    case 0x38c:
      return 0x3cc;
    case 0x38e:
      return 0x3cd;
    case 0x38f:
      return 0x3ce;
    default:
      break;
  }
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}

bool cased(char32_t c) {
  return to_upper_cp(c) != c || to_lower_cp(c) != c || c == 0xdf;
}

namespace {

// Whether kmoe maps this code point's case as Python does: ASCII, Latin-1, Latin Extended-A,
// basic Greek and Cyrillic, and the scripts and symbols that have no case. Case filters and
// methods refuse text with other code points (Armenian, Vietnamese, final sigma, ...).
bool case_known(char32_t c) {
  if (c < 0x180) return c != 0x130 && c != 0x131 && c != 0x149 && c != 0x17f;
  if (c >= 0x386 && c <= 0x3ce) return c != 0x390 && c != 0x3b0 && c != 0x3a3 && c != 0x3c2;
  if (c >= 0x400 && c <= 0x45f) return true;
  return (c >= 0x590 && c <= 0x109f) || (c >= 0x2000 && c <= 0x2125) || (c >= 0x2190 && c <= 0x24b5) ||
         (c >= 0x24ea && c <= 0x2bff) || (c >= 0x2e00 && c <= 0xa63f) || (c >= 0xac00 && c <= 0xd7ff) ||
         (c >= 0xe000 && c <= 0xff20) || (c >= 0xff5b && c <= 0xffff) || (c >= 0x1f000 && c <= 0x1faff) || c >= 0x20000;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Python str methods and the text filters built on them.

namespace {

std::u32string strip_cps(const std::u32string& s, const std::u32string* chars, bool left, bool right) {
  const auto drop = [&](char32_t c) { return chars ? chars->find(c) != std::u32string::npos : py_space(c); };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && drop(s[b])) ++b;
  if (right)
    while (e > b && drop(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  if (chars && chars->kind != Kind::none && chars->kind != Kind::string) fault("strip arg must be None or str");
  const std::u32string cs = chars && chars->kind == Kind::string ? utf8_decode(chars->s) : std::u32string();
  return utf8_encode(strip_cps(utf8_decode(s), chars && chars->kind == Kind::string ? &cs : nullptr, left, right));
}

void check_case(const std::u32string& s, const char* what) {
  for (char32_t c : s)
    if (!case_known(c)) {
      std::string one;
      utf8_append(one, c);
      refuse(std::string(what) + " of text with '" + one + "' (kmoe maps case for Latin, Greek and Cyrillic only)");
    }
}

std::string py_upper(const std::string& s) {
  const std::u32string cps = utf8_decode(s);
  check_case(cps, "upper-casing");
  std::u32string out;
  for (char32_t c : cps) {
    if (c == 0xdf)
      out += U"SS";
    else
      out += to_upper_cp(c);
  }
  return utf8_encode(out);
}

std::string py_lower(const std::string& s) {
  std::u32string cps = utf8_decode(s);
  check_case(cps, "lower-casing");
  for (char32_t& c : cps) c = to_lower_cp(c);
  return utf8_encode(cps);
}

namespace {

// The first code point title-cased, as str.capitalize() and str.title() write it.
void append_titled(std::u32string& out, char32_t c) {
  if (c == 0xdf)
    out += U"Ss";
  else
    out += to_upper_cp(c);
}

}  // namespace

std::string py_capitalize(const std::string& s) {
  const std::u32string cps = utf8_decode(s);
  check_case(cps, "capitalizing");
  std::u32string out;
  for (size_t k = 0; k < cps.size(); ++k) {
    if (k == 0)
      append_titled(out, cps[k]);
    else
      out += to_lower_cp(cps[k]);
  }
  return utf8_encode(out);
}

std::string py_title(const std::string& s) {  // str.title()
  const std::u32string cps = utf8_decode(s);
  check_case(cps, "title-casing");
  std::u32string out;
  bool prev_cased = false;
  for (char32_t c : cps) {
    if (prev_cased)
      out += to_lower_cp(c);
    else
      append_titled(out, c);
    prev_cased = cased(c);
  }
  return utf8_encode(out);
}

std::string jinja_title(const std::string& s) {  // the title filter: words start after [-\s({\[<]+
  const std::u32string cps = utf8_decode(s);
  check_case(cps, "title-casing");
  std::u32string out;
  bool start = true;
  for (char32_t c : cps) {
    const bool sep = c == '-' || py_space(c) || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      out += c;
      start = true;
    } else if (start) {
      append_titled(out, c);
      start = false;
    } else {
      out += to_lower_cp(c);
    }
  }
  return utf8_encode(out);
}

int64_t py_count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_decode(s).size()) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts `repl` around every code point
    const std::u32string cps = utf8_decode(s);
    int64_t done = 0;
    for (size_t k = 0; k <= cps.size(); ++k) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (k < cps.size()) utf8_append(out, cps[k]);
    }
    return out;
  }
  size_t from = 0;
  int64_t done = 0;
  for (;;) {
    const size_t at = (count >= 0 && done >= count) ? std::string::npos : s.find(old, from);
    if (at == std::string::npos) break;
    out.append(s, from, at - from).append(repl);
    from = at + old.size();
    ++done;
  }
  return out.append(s, from, std::string::npos);
}

List py_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  List out;
  if (sep.kind == Kind::none || is_undefined(sep)) {
    std::u32string cps = utf8_decode(s);
    if (from_right) std::reverse(cps.begin(), cps.end());
    std::vector<std::u32string> parts;
    size_t k = 0;
    while (k < cps.size()) {
      while (k < cps.size() && py_space(cps[k])) ++k;
      if (k >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(cps.substr(k));  // the rest keeps its trailing whitespace
        break;
      }
      size_t e = k;
      while (e < cps.size() && !py_space(cps[e])) ++e;
      parts.push_back(cps.substr(k, e - k));
      k = e;
    }
    if (from_right) {
      std::reverse(parts.begin(), parts.end());
      for (auto& p : parts) std::reverse(p.begin(), p.end());
    }
    for (const auto& p : parts) out.push_back(str_value(utf8_encode(p)));
    return out;
  }
  if (sep.kind != Kind::string) fault("must be str or None, not " + type_name(sep));
  if (sep.s.empty()) fault("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t from = 0;
    for (;;) {
      const size_t at =
          maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit ? std::string::npos : s.find(sep.s, from);
      if (at == std::string::npos) break;
      parts.push_back(s.substr(from, at - from));
      from = at + sep.s.size();
    }
    parts.push_back(s.substr(from));
  } else {
    size_t end = s.size();
    for (;;) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) break;
      if (end < sep.s.size()) break;
      const size_t at = s.rfind(sep.s, end - sep.s.size());
      if (at == std::string::npos) break;
      parts.push_back(s.substr(at + sep.s.size(), end - at - sep.s.size()));
      end = at;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  for (auto& p : parts) out.push_back(str_value(std::move(p)));
  return out;
}

std::vector<std::u32string> py_splitlines(const std::u32string& s, bool keepends) {
  std::vector<std::u32string> out;
  size_t start = 0, k = 0;
  while (k < s.size()) {
    const char32_t c = s[k];
    const bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
                     c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      ++k;
      continue;
    }
    size_t end = k + 1;
    if (c == '\r' && end < s.size() && s[end] == '\n') ++end;
    out.push_back(s.substr(start, (keepends ? end : k) - start));
    start = k = end;
  }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
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
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Python's int(str, base) after jinja2's |int: whitespace and underscores allowed.
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string s = py_strip(text, nullptr, true, true);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.erase(0, 1);
  }
  if (s.size() > 2 && s[0] == '0' &&
      ((base == 16 && (s[1] == 'x' || s[1] == 'X')) || (base == 8 && (s[1] == 'o' || s[1] == 'O')) ||
       (base == 2 && (s[1] == 'b' || s[1] == 'B'))))
    s.erase(0, 2);
  if (s.empty() || s.front() == '_' || s.back() == '_' || s.find("__") != std::string::npos) return std::nullopt;
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return neg ? -v : v;
}

std::optional<double> parse_float(const std::string& text) {
  std::string s = py_strip(text, nullptr, true, true);
  std::string lower = s;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string body = !lower.empty() && (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  const double sign = !lower.empty() && lower[0] == '-' ? -1.0 : 1.0;
  if (body == "inf" || body == "infinity") return sign * INFINITY;
  if (body == "nan") return NAN;
  if (s.empty() || s.find("__") != std::string::npos || s.front() == '_' || s.back() == '_') return std::nullopt;
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.find_first_not_of("0123456789+-.eE") != std::string::npos) return std::nullopt;
  double v = 0;
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  const auto r = std::from_chars(b, s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace kmoe::jinja::detail
