// See answer_extraction.h. Regexes go through PCRE2 (UTF mode) rather than std::regex: a
// user's --answer-regex is written in Perl/Python syntax, which std::regex does not speak.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "evaluator/answer_extraction.h"

#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace kmoe {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// All matches of `pattern` in `text`: per match, the first capture group if it took part,
// else the whole match.
std::vector<std::string> regex_all(const std::string& pattern, const std::string& text, bool caseless) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> code(
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                    PCRE2_UTF | (caseless ? PCRE2_CASELESS : 0u), &err, &err_off, nullptr),
      pcre2_code_free);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    throw std::invalid_argument("answer regex '" + pattern + "' at offset " + std::to_string(err_off) + ": " +
                                reinterpret_cast<const char*>(msg));
  }
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code.get(), nullptr), pcre2_match_data_free);
  std::vector<std::string> out;
  PCRE2_SIZE start = 0;
  while (start <= text.size()) {
    const int rc =
        pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0, md.get(), nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (rc >= 2 && ov[2] != PCRE2_UNSET) {
      out.push_back(text.substr(ov[2], ov[3] - ov[2]));
    } else {
      out.push_back(text.substr(ov[0], ov[1] - ov[0]));
    }
    start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
  }
  return out;
}

std::string extract_choice(int64_t n_choices, const std::string& text) {
  const char last = static_cast<char>('A' + std::max<int64_t>(n_choices, 1) - 1);
  const std::string letters = std::string("[A-") + last + "]";
  // "the answer is (B)" wins; else the first standalone letter ("B", "(B)", "B.", "B)").
  const auto stated = regex_all("answer is:?\\s*\\(?(" + letters + ")\\b", text, false);
  if (!stated.empty()) return stated.back();
  const auto any = regex_all("(?<![A-Za-z0-9])(" + letters + ")(?![A-Za-z0-9])", text, false);
  return any.empty() ? "" : any.front();
}

std::string extract_yesno(const std::string& text) {
  const auto m = regex_all("\\b(yes|no|true|false)\\b", text, true);
  if (m.empty()) return "";
  const std::string w = lower(m.front());
  return (w == "yes" || w == "true") ? "yes" : "no";
}

const char* kNumber = "-?\\d[\\d,]*(?:\\.\\d+)?|-?\\.\\d+";

std::string extract_number(const std::string& text) {
  const auto pos = lower(text).rfind("answer is");
  if (pos != std::string::npos) {
    const auto after = regex_all(kNumber, text.substr(pos), false);
    if (!after.empty()) return answer_normalize_number(after.front());
  }
  const auto all = regex_all(kNumber, text, false);
  return all.empty() ? "" : answer_normalize_number(all.back());
}

std::string extract_exact(const std::string& text) {
  size_t b = 0;
  while (b <= text.size()) {
    const size_t e = std::min(text.find('\n', b), text.size());
    const std::string line = trim(text.substr(b, e - b));
    if (!line.empty()) return line;
    b = e + 1;
  }
  return "";
}

}  // namespace

AnswerFormat answer_format_parse(const std::string& name) {
  if (name == "choice") return AnswerFormat::choice;
  if (name == "yesno") return AnswerFormat::yesno;
  if (name == "number") return AnswerFormat::number;
  if (name == "exact") return AnswerFormat::exact;
  if (name == "regex") return AnswerFormat::regex;
  throw std::invalid_argument("answer format must be choice, yesno, number, exact or regex, not '" + name + "'");
}

const char* answer_format_name(AnswerFormat format) {
  switch (format) {
    case AnswerFormat::choice:
      return "choice";
    case AnswerFormat::yesno:
      return "yesno";
    case AnswerFormat::number:
      return "number";
    case AnswerFormat::exact:
      return "exact";
    case AnswerFormat::regex:
      return "regex";
  }
  return "?";
}

std::string answer_normalize_number(const std::string& text) {
  std::string s;
  for (const char c : trim(text)) {
    if (c != ',') s += c;
  }
  const auto m = regex_all(kNumber, s, false);
  if (m.empty()) return "";
  s = m.front();
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.erase(0, 1);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (!s.empty() && s[0] == '.') s = "0" + s;
  const auto nz = s.find_first_not_of('0');
  if (nz == std::string::npos) return "0";
  if (s[nz] == '.')
    s = s.substr(nz - 1);
  else
    s = s.substr(nz);
  return negative ? "-" + s : s;
}

std::string answer_extract(const AnswerSpec& spec, const std::string& generated) {
  switch (spec.format) {
    case AnswerFormat::choice:
      return extract_choice(spec.n_choices, generated);
    case AnswerFormat::yesno:
      return extract_yesno(generated);
    case AnswerFormat::number:
      return extract_number(generated);
    case AnswerFormat::exact:
      return extract_exact(generated);
    case AnswerFormat::regex: {
      if (spec.regex.empty()) throw std::invalid_argument("answer format regex needs --answer-regex");
      const auto m = regex_all(spec.regex, generated, false);
      return m.empty() ? "" : trim(m.front());
    }
  }
  return "";
}

std::string answer_normalize_gold(const AnswerSpec& spec, const std::string& gold) {
  const std::string g = trim(gold);
  switch (spec.format) {
    case AnswerFormat::choice:
      if (g.size() != 1 || g[0] < 'A' || g[0] >= 'A' + std::max<int64_t>(spec.n_choices, 1)) {
        throw std::invalid_argument("answer '" + gold + "' is not a choice letter");
      }
      return g;
    case AnswerFormat::yesno: {
      const std::string l = lower(g);
      if (l == "yes" || l == "true") return "yes";
      if (l == "no" || l == "false") return "no";
      throw std::invalid_argument("answer '" + gold + "' is not yes or no");
    }
    case AnswerFormat::number: {
      const std::string n = answer_normalize_number(g);
      if (n.empty()) throw std::invalid_argument("answer '" + gold + "' is not a number");
      return n;
    }
    case AnswerFormat::exact:
    case AnswerFormat::regex:
      return g;
  }
  return g;
}

}  // namespace kmoe
