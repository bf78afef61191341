// The front end: a lexer that tokenizes the source as jinja2's does (whitespace control, with
// trim_blocks and lstrip_blocks applied to the text tokens) and a recursive-descent parser
// following jinja2's Parser that builds the tree declared in jinja_parse.h, refusing unknown
// filters, tests and statements at parse time. Syntax errors are thrown as Error with the line.
#include "data/tokenizers/jinja_parse.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "data/tokenizers/jinja.h"

namespace kmoe::jinja::detail {

// ---------------------------------------------------------------------------------------------
// Lexer: jinja2's, with trim_blocks and lstrip_blocks on (transformers' settings).

namespace {

enum class Tok { data, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof };

struct Token {
  Tok type;
  std::string text;  // data text, name, operator, or a literal's decoded value
  int line;
  int64_t i = 0;
  double f = 0;
};

}  // namespace

const std::set<std::string> kFilters = {
    "abs",   "attr",   "capitalize", "count",      "d",       "default", "dictsort", "e",    "escape", "first",
    "float", "indent", "int",        "items",      "join",    "last",    "length",   "list", "lower",  "map",
    "max",   "min",    "reject",     "rejectattr", "replace", "reverse", "round",    "safe", "select", "selectattr",
    "sort",  "string", "sum",        "title",      "tojson",  "trim",    "unique",   "upper"};
const std::set<std::string> kTests = {
    "boolean", "callable",  "defined", "divisibleby", "eq",     "equalto", "escaped",  "even",     "false",    "filter",
    "float",   "ge",        "gt",      "greaterthan", "in",     "integer", "iterable", "le",       "lessthan", "lower",
    "lt",      "mapping",   "ne",      "none",        "number", "odd",     "sameas",   "sequence", "string",   "test",
    "true",    "undefined", "upper",   "==",          "!=",     "<",       "<=",       ">",        ">="};

namespace {

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : name_(name) {
    // jinja2 turns \r\n and \r into \n and drops one trailing newline (keep_trailing_newline off)
    src_.reserve(source.size());
    for (size_t k = 0; k < source.size(); ++k) {
      if (source[k] == '\r') {
        src_ += '\n';
        if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
      } else {
        src_ += source[k];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t at = pos_;
      for (;;) {
        at = src_.find('{', at);
        if (at == std::string::npos || at + 1 >= src_.size()) {
          at = std::string::npos;
          break;
        }
        const char k = src_[at + 1];
        if (k == '{' || k == '%' || k == '#') break;
        ++at;
      }
      if (at == std::string::npos) {
        emit(Tok::data, src_.substr(pos_));
        break;
      }
      std::string text = src_.substr(pos_, at - pos_);
      const int text_lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
      const char kind = src_[at + 1];
      const char sign = at + 2 < src_.size() && (src_[at + 2] == '-' || src_[at + 2] == '+') ? src_[at + 2] : 0;
      if (sign == '-') {  // Python's str.rstrip()
        std::u32string cps = utf8_decode(text);
        while (!cps.empty() && py_space(cps.back())) cps.pop_back();
        text = utf8_encode(cps);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: blocks and comments, not {{
        const size_t l_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (l_pos > 0 || line_starting) {
          const bool blank = l_pos < text.size() &&
                             std::all_of(text.begin() + static_cast<long>(l_pos), text.end(),
                                         [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
          if (blank) text.resize(l_pos);
        }
      }
      if (!text.empty()) emit(Tok::data, text);
      line_ += text_lines;
      pos_ = at + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        line_starting = comment();
      } else {
        if (kind == '%') check_raw();
        emit(kind == '{' ? Tok::var_begin : Tok::block_begin, "");
        line_starting = tag(kind);
      }
    }
    tokens_.push_back({Tok::eof, "", line_});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw Error(name_ + " line " + std::to_string(line_) + ": " + what);
  }

  void emit(Tok t, std::string text) { tokens_.push_back({t, std::move(text), line_}); }

  bool starts(const char* s) const { return src_.compare(pos_, std::strlen(s), s) == 0; }

  // Skips `n` characters, then all whitespace; says whether the last character skipped was a newline.
  bool skip_then_space(size_t n) {
    pos_ += n;
    char last = src_[pos_ - 1];
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) {
      if (src_[pos_] == '\n') ++line_;
      last = src_[pos_++];
    }
    return last == '\n';
  }

  // After `{#`: up to `#}`, `-#}` (then whitespace) or `+#}`; `#}` also eats one newline.
  bool comment() {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail("missing end of comment tag");
    line_ += static_cast<int>(
        std::count(src_.begin() + static_cast<long>(pos_), src_.begin() + static_cast<long>(end), '\n'));
    const char before = end > pos_ ? src_[end - 1] : 0;
    pos_ = end;
    if (before == '-') return skip_then_space(2);
    pos_ += 2;
    if (before != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    return false;
  }

  void check_raw() {
    size_t p = pos_;
    while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
    if (src_.compare(p, 3, "raw") == 0 && p + 3 < src_.size() &&
        (std::isspace(static_cast<unsigned char>(src_[p + 3])) || src_[p + 3] == '-' || src_[p + 3] == '%')) {
      throw Unsupported(name_ + " line " + std::to_string(line_) + ": statement 'raw' is not supported");
    }
  }

  size_t digits_end(size_t p) const {  // (\d+_)*\d+ from p; p itself when there is no digit
    size_t q = p;
    while (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
      ++q;
      if (q + 1 < src_.size() && src_[q] == '_' && std::isdigit(static_cast<unsigned char>(src_[q + 1]))) ++q;
    }
    return q;
  }

  static std::string without_underscores(std::string s) {
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    return s;
  }

  // The tokens of one {{ }} / {% %} up to its end; returns line_starting for the next text.
  bool tag(char kind) {
    std::vector<char> balance;
    for (;;) {
      while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) {
        if (src_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size())
        fail(kind == '%' ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      if (balance.empty()) {
        if (kind == '%') {
          if (starts("+%}")) {
            pos_ += 3;
            emit(Tok::block_end, "");
            return false;
          }
          if (starts("-%}")) {
            emit(Tok::block_end, "");
            return skip_then_space(3);
          }
          if (starts("%}")) {
            emit(Tok::block_end, "");
            pos_ += 2;
            if (pos_ < src_.size() && src_[pos_] == '\n') {  // trim_blocks
              ++pos_;
              ++line_;
              return true;
            }
            return false;
          }
        } else {
          if (starts("-}}")) {
            emit(Tok::var_end, "");
            return skip_then_space(3);
          }
          if (starts("}}")) {
            emit(Tok::var_end, "");
            pos_ += 2;
            return false;
          }
        }
      }
      const char c = src_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        number();
        continue;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t q = pos_;
        while (q < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
        emit(Tok::name, src_.substr(pos_, q - pos_));
        pos_ = q;
        continue;
      }
      if (c == '\'' || c == '"') {
        string_literal(c);
        continue;
      }
      static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                         "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};
      bool matched = false;
      for (const char* op : kOps) {
        if (!starts(op)) continue;
        const std::string o = op;
        if (o == "(" || o == "[" || o == "{") balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
        if (o == ")" || o == "]" || o == "}") {
          if (balance.empty()) fail("unexpected '" + o + "'");
          if (balance.back() != o[0]) fail("unexpected '" + o + "', expected '" + std::string(1, balance.back()) + "'");
          balance.pop_back();
        }
        emit(Tok::op, o);
        pos_ += o.size();
        matched = true;
        break;
      }
      if (!matched) fail(std::string("unexpected char '") + c + "'");
    }
  }

  void number() {
    const bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';
    // float: (\d+_)*\d+ ( (\.(\d+_)*\d+)? e[+-]?(\d+_)*\d+ | \.(\d+_)*\d+ )
    const size_t int_end = digits_end(pos_);
    if (!after_dot) {
      size_t q = int_end;
      bool fraction = false;
      if (q + 1 < src_.size() && src_[q] == '.' && std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
        q = digits_end(q + 1);
        fraction = true;
      }
      size_t e = q;
      bool exponent = false;
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t x = e + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        if (x < src_.size() && std::isdigit(static_cast<unsigned char>(src_[x]))) {
          e = digits_end(x);
          exponent = true;
        }
      }
      if (fraction || exponent) {
        const size_t end = exponent ? e : q;
        Token t{Tok::floating, src_.substr(pos_, end - pos_), line_};
        t.f = std::strtod(without_underscores(t.text).c_str(), nullptr);
        tokens_.push_back(t);
        pos_ = end;
        return;
      }
    }
    int base = 10;
    size_t start = pos_, end = int_end;
    if (src_[pos_] == '0' && pos_ + 1 < src_.size() && std::strchr("bBoOxX", src_[pos_ + 1])) {
      const char b = static_cast<char>(std::tolower(src_[pos_ + 1]));
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      start = pos_ + 2;
      end = start;
      while (end < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
    } else if (src_[pos_] == '0') {
      end = pos_ + 1;  // 0(_?0)*
      while (end + 1 < src_.size() && (src_[end] == '0' || (src_[end] == '_' && src_[end + 1] == '0'))) ++end;
      if (end < src_.size() && src_[end] == '0') ++end;
    }
    Token t{Tok::integer, src_.substr(pos_, end - pos_), line_};
    errno = 0;
    const std::string digits = without_underscores(src_.substr(start, end - start));
    t.i = std::strtoll(digits.c_str(), nullptr, base);
    if (errno == ERANGE)
      throw Unsupported(name_ + " line " + std::to_string(line_) + ": integer literal " + t.text +
                        " beyond 64 bits is not supported");
    tokens_.push_back(t);
    pos_ = end;
  }

  // Python's unicode-escape decoding of a string literal's body.
  void string_literal(char quote) {
    std::string out;
    size_t q = pos_ + 1;
    const int start_line = line_;
    for (;;) {
      if (q >= src_.size()) fail("unexpected end of string literal");
      const char c = src_[q];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out += c;
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) fail("unexpected end of string literal");
      const char e = src_[q + 1];
      q += 2;
      switch (e) {
        case '\n':
          ++line_;
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (q + n > src_.size()) fail("truncated \\" + std::string(1, e) + " escape in a string literal");
          const std::string hex = src_.substr(q, n);
          if (!std::all_of(hex.begin(), hex.end(), [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); }))
            fail("truncated \\" + std::string(1, e) + " escape in a string literal");
          utf8_append(out, static_cast<char32_t>(std::stoul(hex, nullptr, 16)));
          q += n;
          break;
        }
        case 'N':
          throw Unsupported(name_ + " line " + std::to_string(line_) + ": the \\N{...} escape is not supported");
        default:
          if (e >= '0' && e <= '7') {
            unsigned v = static_cast<unsigned>(e - '0');
            for (int k = 0; k < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k)
              v = v * 8 + static_cast<unsigned>(src_[q++] - '0');
            utf8_append(out, v);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    Token t{Tok::string, out, start_line};
    tokens_.push_back(t);
    pos_ = q + 1;
  }

  std::string name_;
  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

// Deeper nesting than any real template has is refused: the parser and the renderer recurse
// once per level, and jinja2 itself ends such a template with a RecursionError.
constexpr int kMaxNesting = 200;

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name) : t_(std::move(tokens)), name_(name) {}

  Body parse() {
    Body b = subparse({});
    return b;
  }

 private:
  [[noreturn]] void fail(const std::string& what, int line = -1) {
    throw Error(name_ + " line " + std::to_string(line < 0 ? peek().line : line) + ": " + what);
  }
  // One level of nesting for the lifetime of the guard.
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("nesting deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nest() { --p.depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };
  // A loop that wraps its expression once per round (a + b + c, x|f|g, a.b[0](), ...) builds
  // a tree one level deeper per round: each round is a level of nesting until the loop ends.
  struct Chain {
    Parser& p;
    int links = 0;
    explicit Chain(Parser& parser) : p(parser) {}
    void link() {
      ++links;
      if (++p.depth_ > kMaxNesting) p.fail("nesting deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Chain() { p.depth_ -= links; }
    Chain(const Chain&) = delete;
    Chain& operator=(const Chain&) = delete;
  };
  [[noreturn]] void unsupported(const std::string& what, int line = -1) {
    throw Unsupported(name_ + " line " + std::to_string(line < 0 ? peek().line : line) + ": " + what +
                      " is not supported");
  }

  const Token& peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[p_];
    if (p_ + 1 < t_.size()) ++p_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).type == Tok::op && peek(ahead).text == op; }
  bool is_name(const char* n, size_t ahead = 0) const { return peek(ahead).type == Tok::name && peek(ahead).text == n; }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::eof:
        return "end of template";
      case Tok::block_end:
        return "end of statement block";
      case Tok::var_end:
        return "end of print statement";
      case Tok::data:
        return "template data";
      case Tok::string:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(peek()));
    next();
  }
  void expect(Tok type, const char* what) {
    if (peek().type != type) fail(std::string("expected ") + what + ", got " + describe(peek()));
    next();
  }
  std::string expect_name() {
    if (peek().type != Tok::name) fail("expected a name, got " + describe(peek()));
    return next().text;
  }

  Body subparse(const std::vector<std::string>& ends) {
    Body body;
    for (;;) {
      const Token& t = peek();
      if (t.type == Tok::eof) {
        if (!ends.empty()) {
          std::string want;
          for (const auto& e : ends) want += (want.empty() ? "'" : " or '") + e + "'";
          fail("unexpected end of template, expected " + want);
        }
        return body;
      }
      if (t.type == Tok::data) {
        auto s = std::make_shared<Stmt>();
        s->kind = SK::text;
        s->line = t.line;
        s->text = t.text;
        body.push_back(s);
        next();
      } else if (t.type == Tok::var_begin) {
        next();
        auto s = std::make_shared<Stmt>();
        s->kind = SK::print;
        s->line = peek().line;
        s->expr = parse_tuple(true, {}, false);
        expect(Tok::var_end, "'}}'");
        body.push_back(s);
      } else if (t.type == Tok::block_begin) {
        next();
        if (peek().type == Tok::name && std::find(ends.begin(), ends.end(), peek().text) != ends.end()) return body;
        body.push_back(statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  StmtP statement() {
    const Nest nest(*this);
    const Token& t = peek();
    if (t.type != Tok::name) fail("expected a statement name, got " + describe(t));
    const std::string& n = t.text;
    if (n == "for") return parse_for();
    if (n == "if") return parse_if();
    if (n == "set") return parse_set();
    if (n == "macro") return parse_macro();
    if (n == "with") return parse_with();
    if (n == "filter") return parse_filter_block();
    if (n == "generation") return parse_generation();
    if (n == "break" || n == "continue") {
      auto s = std::make_shared<Stmt>();
      s->kind = n == "break" ? SK::break_ : SK::continue_;
      s->line = t.line;
      if (loops_ == 0) fail("'" + n + "' outside a for loop");
      next();
      expect(Tok::block_end, "'%}'");
      return s;
    }
    static const std::set<std::string> kRefused = {"block", "extends",    "include", "import", "from",      "call",
                                                   "raw",   "autoescape", "do",      "trans",  "pluralize", "print"};
    if (kRefused.count(n)) unsupported("statement '" + n + "'");
    fail("unknown tag '" + n + "'");
  }

  Target assign_target(bool with_namespace) {
    Target tg;
    if (with_namespace && peek().type == Tok::name && is_op(".", 1) && peek(2).type == Tok::name) {
      tg.names.push_back(next().text);
      next();
      tg.attr = next().text;
      return tg;
    }
    const bool paren = is_op("(");
    if (paren) next();
    tg.names.push_back(expect_name());
    while (is_op(",")) {
      next();
      tg.tuple = true;
      if (peek().type != Tok::name) break;
      tg.names.push_back(expect_name());
    }
    if (paren) {
      expect_op(")");
      tg.tuple = true;
    }
    for (const auto& nm : tg.names)
      if (nm == "true" || nm == "false" || nm == "none" || nm == "True" || nm == "False" || nm == "None")
        fail("cannot assign to '" + nm + "'");
    return tg;
  }

  StmtP parse_for() {
    auto s = std::make_shared<Stmt>();
    s->kind = SK::for_;
    s->line = next().line;
    s->target = assign_target(false);
    if (!is_name("in")) fail("expected 'in', got " + describe(peek()));
    next();
    s->expr = parse_tuple(false, {"recursive"}, false);
    if (is_name("if")) {
      next();
      s->cond = parse_expression(true);
    }
    if (is_name("recursive")) unsupported("recursive for loops");
    expect(Tok::block_end, "'%}'");
    ++loops_;
    s->body = subparse({"endfor", "else"});
    --loops_;
    if (next().text == "else") {
      expect(Tok::block_end, "'%}'");
      s->else_body = subparse({"endfor"});
      next();
    }
    expect(Tok::block_end, "'%}'");
    return s;
  }

  StmtP parse_if() {
    auto s = std::make_shared<Stmt>();
    s->kind = SK::if_;
    s->line = next().line;
    for (;;) {
      ExprP cond = parse_tuple(false, {}, false);
      expect(Tok::block_end, "'%}'");
      Body b = subparse({"elif", "else", "endif"});
      s->branches.emplace_back(cond, std::move(b));
      const std::string which = next().text;
      if (which == "elif") continue;
      if (which == "else") {
        expect(Tok::block_end, "'%}'");
        s->else_body = subparse({"endif"});
        next();
      }
      break;
    }
    expect(Tok::block_end, "'%}'");
    return s;
  }

  StmtP parse_set() {
    auto s = std::make_shared<Stmt>();
    s->line = next().line;
    s->target = assign_target(true);
    if (is_op("=")) {
      next();
      s->kind = SK::set;
      s->expr = parse_tuple(true, {}, false);
      expect(Tok::block_end, "'%}'");
      return s;
    }
    s->kind = SK::set_block;
    if (is_op("|")) s->filters = filter_chain(false);
    expect(Tok::block_end, "'%}'");
    s->body = subparse({"endset"});
    next();
    expect(Tok::block_end, "'%}'");
    return s;
  }

  StmtP parse_macro() {
    auto s = std::make_shared<Stmt>();
    s->kind = SK::macro;
    s->line = next().line;
    s->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      s->params.push_back(expect_name());
      if (is_op("=")) {
        next();
        s->defaults.push_back(parse_expression(true));
      } else {
        if (!s->defaults.empty() && s->defaults.back()) fail("non-default argument follows default argument");
        s->defaults.push_back(nullptr);
      }
    }
    next();
    expect(Tok::block_end, "'%}'");
    const size_t seen = names_.size();
    const int loops = loops_;
    loops_ = 0;
    s->body = subparse({"endmacro"});
    loops_ = loops;
    for (size_t k = seen; k < names_.size(); ++k) {
      if (names_[k] == "varargs") s->varargs = true;
      if (names_[k] == "kwargs") s->kwargs = true;
      if (names_[k] == "caller") unsupported("'caller' in a macro ({% call %} blocks)", s->line);
    }
    next();
    if (peek().type == Tok::name) next();  // {% endmacro name %}
    expect(Tok::block_end, "'%}'");
    return s;
  }

  StmtP parse_with() {
    auto s = std::make_shared<Stmt>();
    s->kind = SK::with;
    s->line = next().line;
    while (peek().type != Tok::block_end) {
      if (!s->assigns.empty()) expect_op(",");
      Target tg = assign_target(false);
      expect_op("=");
      s->assigns.emplace_back(tg, parse_expression(true));
    }
    next();
    s->body = subparse({"endwith"});
    next();
    expect(Tok::block_end, "'%}'");
    return s;
  }

  StmtP parse_filter_block() {
    auto s = std::make_shared<Stmt>();
    s->kind = SK::filter_block;
    s->line = next().line;
    s->filters = filter_chain(true);
    expect(Tok::block_end, "'%}'");
    s->body = subparse({"endfilter"});
    next();
    expect(Tok::block_end, "'%}'");
    return s;
  }

  StmtP parse_generation() {
    auto s = std::make_shared<Stmt>();
    s->kind = SK::generation;
    s->line = next().line;
    expect(Tok::block_end, "'%}'");
    s->body = subparse({"endgeneration"});
    next();
    expect(Tok::block_end, "'%}'");
    return s;
  }

  // ---- expressions, following jinja2.parser.Parser ----

  std::shared_ptr<Expr> node(EK kind, int line) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  bool tuple_end(const std::vector<std::string>& extra_end) const {
    const Token& t = peek();
    if (t.type == Tok::var_end || t.type == Tok::block_end || t.type == Tok::eof) return true;
    if (t.type == Tok::op && t.text == ")") return true;
    if (t.type == Tok::name) return std::find(extra_end.begin(), extra_end.end(), t.text) != extra_end.end();
    return false;
  }

  ExprP parse_tuple(bool with_condexpr, const std::vector<std::string>& extra_end, bool explicit_parentheses) {
    const int line = peek().line;
    std::vector<ExprP> args;
    bool is_tuple = false;
    for (;;) {
      if (!args.empty()) expect_op(",");
      if (tuple_end(extra_end)) break;
      args.push_back(parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!args.empty()) return args[0];
      if (!explicit_parentheses) fail("expected an expression, got " + describe(peek()));
    }
    auto e = node(EK::tuple, line);
    e->items = std::move(args);
    return e;
  }

  ExprP parse_expression(bool with_condexpr) {
    const Nest nest(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprP parse_condexpr() {
    ExprP expr1 = parse_or();
    Chain chain(*this);
    while (is_name("if")) {
      chain.link();
      const int line = next().line;
      ExprP expr2 = parse_or();
      ExprP expr3;
      if (is_name("else")) {
        next();
        const Nest nest(*this);
        expr3 = parse_condexpr();
      }
      auto e = node(EK::cond, line);
      e->a = expr1;
      e->b = expr2;
      e->c = expr3;
      expr1 = e;
    }
    return expr1;
  }

  ExprP parse_or() {
    ExprP left = parse_and();
    Chain chain(*this);
    while (is_name("or")) {
      chain.link();
      auto e = node(EK::or_, next().line);
      e->a = left;
      e->b = parse_and();
      left = e;
    }
    return left;
  }

  ExprP parse_and() {
    ExprP left = parse_not();
    Chain chain(*this);
    while (is_name("and")) {
      chain.link();
      auto e = node(EK::and_, next().line);
      e->a = left;
      e->b = parse_not();
      left = e;
    }
    return left;
  }

  ExprP parse_not() {
    if (is_name("not")) {
      auto e = node(EK::unary, next().line);
      e->name = "not";
      const Nest nest(*this);
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprP parse_compare() {
    const int line = peek().line;
    ExprP expr = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprP> operands{expr};
    for (;;) {
      const Token& t = peek();
      if (t.type == Tok::op &&
          (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=")) {
        ops.push_back(next().text);
      } else if (is_name("in")) {
        next();
        ops.push_back("in");
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        ops.push_back("notin");
      } else {
        break;
      }
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return expr;
    auto e = node(EK::compare, line);
    e->ops = std::move(ops);
    e->items = std::move(operands);
    return e;
  }

  ExprP binary(const std::string& op, ExprP a, ExprP b, int line) {
    auto e = node(EK::binary, line);
    e->name = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprP parse_math1() {
    ExprP left = parse_concat();
    Chain chain(*this);
    while (is_op("+") || is_op("-")) {
      chain.link();
      const Token& t = next();
      left = binary(t.text, left, parse_concat(), t.line);
    }
    return left;
  }

  ExprP parse_concat() {
    const int line = peek().line;
    std::vector<ExprP> args{parse_math2()};
    while (is_op("~")) {
      next();
      args.push_back(parse_math2());
    }
    if (args.size() == 1) return args[0];
    auto e = node(EK::concat, line);
    e->items = std::move(args);
    return e;
  }

  ExprP parse_math2() {
    ExprP left = parse_pow();
    Chain chain(*this);
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      chain.link();
      const Token& t = next();
      left = binary(t.text, left, parse_pow(), t.line);
    }
    return left;
  }

  ExprP parse_pow() {
    ExprP left = parse_unary(true);
    Chain chain(*this);
    while (is_op("**")) {
      chain.link();
      const Token& t = next();
      left = binary("**", left, parse_unary(true), t.line);
    }
    return left;
  }

  ExprP parse_unary(bool with_filter) {
    ExprP n;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      auto e = node(EK::unary, t.line);
      e->name = t.text;
      const Nest nest(*this);
      e->a = parse_unary(false);
      n = e;
    } else {
      n = parse_primary();
    }
    n = parse_postfix(n);
    if (with_filter) n = parse_filter_expr(n);
    return n;
  }

  ExprP parse_primary() {
    const Token& t = peek();
    if (t.type == Tok::name) {
      next();
      auto e = node(EK::constant, t.line);
      if (t.text == "true" || t.text == "True")
        e->value = bool_value(true);
      else if (t.text == "false" || t.text == "False")
        e->value = bool_value(false);
      else if (t.text == "none" || t.text == "None")
        e->value = none_value();
      else {
        e->kind = EK::name;
        e->name = t.text;
        names_.push_back(t.text);
      }
      return e;
    }
    if (t.type == Tok::string) {
      auto e = node(EK::constant, t.line);
      std::string s;
      while (peek().type == Tok::string) s += next().text;
      e->value = str_value(s);
      return e;
    }
    if (t.type == Tok::integer || t.type == Tok::floating) {
      auto e = node(EK::constant, t.line);
      e->value = t.type == Tok::integer ? int_value(t.i) : float_value(t.f);
      next();
      return e;
    }
    if (is_op("(")) {
      next();
      ExprP e = parse_tuple(true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      auto e = node(EK::list, next().line);
      while (!is_op("]")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("]")) break;
        e->items.push_back(parse_expression(true));
      }
      next();
      return e;
    }
    if (is_op("{")) {
      auto e = node(EK::dict, next().line);
      while (!is_op("}")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("}")) break;
        e->items.push_back(parse_expression(true));
        expect_op(":");
        e->items.push_back(parse_expression(true));
      }
      next();
      return e;
    }
    fail("unexpected " + describe(t));
  }

  ExprP parse_postfix(ExprP n) {
    Chain chain(*this);
    for (;;) {
      chain.link();
      if (is_op(".")) {
        const int line = next().line;
        const Token& t = next();
        if (t.type == Tok::name) {
          auto e = node(EK::getattr, line);
          e->a = n;
          e->name = t.text;
          n = e;
        } else if (t.type == Tok::integer) {
          auto e = node(EK::getitem, line);
          e->a = n;
          auto k = node(EK::constant, line);
          k->value = int_value(t.i);
          e->b = k;
          n = e;
        } else {
          fail("expected a name or number after '.'", line);
        }
      } else if (is_op("[")) {
        const int line = next().line;
        std::vector<ExprP> args;
        while (!is_op("]")) {
          if (!args.empty()) expect_op(",");
          args.push_back(parse_subscribed());
        }
        next();
        auto e = node(EK::getitem, line);
        e->a = n;
        if (args.size() == 1) {
          e->b = args[0];
        } else {
          auto tup = node(EK::tuple, line);
          tup->items = std::move(args);
          e->b = tup;
        }
        n = e;
      } else if (is_op("(")) {
        n = parse_call(n);
      } else {
        return n;
      }
    }
  }

  ExprP parse_subscribed() {
    const int line = peek().line;
    std::vector<ExprP> args;
    if (is_op(":")) {
      next();
      args.push_back(nullptr);
    } else {
      ExprP e = parse_expression(true);
      if (!is_op(":")) return e;
      next();
      args.push_back(e);
    }
    if (is_op(":"))
      args.push_back(nullptr);
    else if (!is_op("]") && !is_op(","))
      args.push_back(parse_expression(true));
    else
      args.push_back(nullptr);
    if (is_op(":")) {
      next();
      if (!is_op("]") && !is_op(","))
        args.push_back(parse_expression(true));
      else
        args.push_back(nullptr);
    } else {
      args.push_back(nullptr);
    }
    auto e = node(EK::slice, line);
    e->a = args[0];
    e->b = args[1];
    e->c = args[2];
    return e;
  }

  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.items.empty() || !e.kwargs.empty()) expect_op(",");
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) unsupported("*args / **kwargs in a call");
      if (peek().type == Tok::name && is_op("=", 1)) {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail("positional argument after keyword arguments");
        e.items.push_back(parse_expression(true));
      }
    }
    next();
  }

  ExprP parse_call(ExprP callee) {
    auto e = node(EK::call, peek().line);
    e->a = std::move(callee);
    call_args(*e);
    return e;
  }

  std::string dotted_name() {
    std::string n = expect_name();
    while (is_op(".")) {
      next();
      n.append(".").append(expect_name());  // piece by piece: GCC 12 misreads "." + s (-Wrestrict)
    }
    return n;
  }

  // `| f(args) | g` (start_inline: the first filter has no `|`, as in {% filter f %}).
  std::vector<ExprP> filter_chain(bool start_inline) {
    std::vector<ExprP> out;
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      out.push_back(filter(nullptr));
    }
    return out;
  }

  ExprP filter(ExprP operand) {
    const int line = peek().line;
    const std::string n = dotted_name();
    if (!kFilters.count(n)) unsupported("filter '" + n + "'", line);
    auto e = node(EK::filter, line);
    e->name = n;
    e->a = std::move(operand);
    if (is_op("(")) call_args(*e);
    return e;
  }

  ExprP parse_filter_expr(ExprP n) {
    Chain chain(*this);
    for (;;) {
      chain.link();
      if (is_op("|")) {
        next();
        n = filter(n);
      } else if (is_name("is")) {
        n = parse_test(n);
      } else if (is_op("(")) {
        n = parse_call(n);
      } else {
        return n;
      }
    }
  }

  ExprP parse_test(ExprP operand) {
    const int line = next().line;
    bool negated = false;
    if (is_name("not")) {
      next();
      negated = true;
    }
    const std::string n = dotted_name();
    if (!kTests.count(n)) unsupported("test '" + n + "'", line);
    auto e = node(EK::test, line);
    e->name = n;
    e->a = std::move(operand);
    e->negated = negated;
    const Token& t = peek();
    if (is_op("(")) {
      call_args(*e);
    } else if ((t.type == Tok::name || t.type == Tok::string || t.type == Tok::integer || t.type == Tok::floating ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with is");
      ExprP arg = parse_postfix(parse_primary());
      e->items.push_back(arg);
    }
    return e;
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  std::string name_;
  int loops_ = 0;
  int depth_ = 0;                   // nesting of blocks and subexpressions, bounded so that no input exhausts the stack
  std::vector<std::string> names_;  // every name read, for macros' varargs / kwargs / caller
};

}  // namespace

Body parse(const std::string& source, const std::string& name) {
  Lexer lexer(source, name);
  Parser parser(lexer.run(), name);
  return parser.parse();
}

}  // namespace kmoe::jinja::detail
