// See jinja.h. One pass lexes the source as jinja2's lexer does (whitespace control, trim_blocks
// and lstrip_blocks applied to the text tokens), a recursive-descent parser following jinja2's
// Parser builds the tree (refusing unknown filters, tests and statements there), and a tree
// walker renders it with Python-semantics values. Python-level failures are raised as Fault
// deep inside and turned into an Error carrying the template line at the nearest tree node.
#include "data/tokenizers/jinja.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <vector>

namespace kmoe::jinja {

namespace {

// ---------------------------------------------------------------------------------------------
// Strings are UTF-8; Python indexes, slices, measures and strips them by code point.

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    bool ok = n >= 0 && i + n < s.size();
    char32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; ok && k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (!ok) {  // not UTF-8: keep the byte as a code point
      out.push_back(c);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += n + 1;
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

// Python's str.isspace().
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

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
// Values: Python's types as jinja2 sees them, plus jinja2's Undefined.

namespace {

struct Value;
struct Dict;
struct Object;
struct Callable;
using List = std::vector<Value>;

enum class Kind { undefined, none, boolean, integer, floating, string, list, dict, object, callable };
// tuple: from (a, b) or dict.items(); lazy: a generator, range or dict view, which Python
// prints as "<generator object ...>" and so must not be printed.
enum class Seq { list, tuple, lazy };

struct Value {
  Kind kind = Kind::undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;        // string text; for undefined, jinja2's message ("'x' is undefined")
  bool markup = false;  // a Markup string (|safe, |escape): `+` with it escapes, which kmoe refuses
  Seq seq = Seq::list;
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  std::shared_ptr<Object> obj;  // mutable: a namespace's attributes
  std::shared_ptr<const Callable> fn;
};

struct Dict {
  std::vector<std::pair<Value, Value>> items;
};

struct Object {
  std::string type;  // "namespace" or "loop"
  std::vector<std::pair<std::string, Value>> attrs;
  Value* find(const std::string& name) {
    for (auto& [k, v] : attrs)
      if (k == name) return &v;
    return nullptr;
  }
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct Callable {
  std::string name;
  std::function<Value(const Args&)> call;
};

// A Python-level failure without a line yet; the tree walker adds it.
struct Fault {
  enum Type { error, unsupported, raised } type = error;
  std::string message;
};

[[noreturn]] void fault(const std::string& message) {
  throw Fault{Fault::error, message};
}
[[noreturn]] void refuse(const std::string& message) {
  throw Fault{Fault::unsupported, message + " is not supported"};
}

Value undefined(const std::string& why) {
  Value v;
  v.s = why;
  return v;
}
Value none_value() {
  Value v;
  v.kind = Kind::none;
  return v;
}
Value bool_value(bool b) {
  Value v;
  v.kind = Kind::boolean;
  v.b = b;
  return v;
}
Value int_value(int64_t i) {
  Value v;
  v.kind = Kind::integer;
  v.i = i;
  return v;
}
Value float_value(double f) {
  Value v;
  v.kind = Kind::floating;
  v.f = f;
  return v;
}
Value str_value(std::string s, bool markup = false) {
  Value v;
  v.kind = Kind::string;
  v.s = std::move(s);
  v.markup = markup;
  return v;
}
Value list_value(List items, Seq seq = Seq::list, const char* lazy_type = nullptr) {
  Value v;
  v.kind = Kind::list;
  v.seq = seq;
  if (lazy_type) v.s = lazy_type;
  v.list = std::make_shared<const List>(std::move(items));
  return v;
}
Value dict_value(Dict d) {
  Value v;
  v.kind = Kind::dict;
  v.dict = std::make_shared<const Dict>(std::move(d));
  return v;
}
Value callable_value(std::string name, std::function<Value(const Args&)> fn) {
  Value v;
  v.kind = Kind::callable;
  v.fn = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

bool is_undefined(const Value& v) {
  return v.kind == Kind::undefined;
}
bool is_number(const Value& v) {
  return v.kind == Kind::boolean || v.kind == Kind::integer || v.kind == Kind::floating;
}
bool is_intlike(const Value& v) {
  return v.kind == Kind::boolean || v.kind == Kind::integer;
}
int64_t as_int(const Value& v) {
  return v.kind == Kind::boolean ? v.b : v.i;
}
double as_float(const Value& v) {
  return v.kind == Kind::floating ? v.f : static_cast<double>(as_int(v));
}

[[noreturn]] void fail_undefined(const Value& v) {
  fault(v.s.empty() ? "value is undefined" : v.s);
}

// Python's type(x).__name__.
std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
      return "Undefined";
    case Kind::none:
      return "NoneType";
    case Kind::boolean:
      return "bool";
    case Kind::integer:
      return "int";
    case Kind::floating:
      return "float";
    case Kind::string:
      return v.markup ? "Markup" : "str";
    case Kind::list:
      return v.seq == Seq::tuple ? "tuple" : v.seq == Seq::lazy ? v.s : "list";
    case Kind::dict:
      return "dict";
    case Kind::object:
      return v.obj->type == "loop" ? "LoopContext" : "Namespace";
    case Kind::callable:
      return "function";
  }
  return "?";
}

// jinja2's object_type_repr, used in its undefined messages.
std::string object_type_repr(const Value& v) {
  if (v.kind == Kind::none) return "None";
  return type_name(v) + " object";
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(e + 1));
  const int decpt = exp + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  std::string out;
  if (decpt <= -4 || decpt > 16) {
    out = digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    const int x = decpt - 1;
    std::string xs = std::to_string(std::abs(x));
    if (xs.size() < 2) xs = "0" + xs;
    out += std::string("e") + (x < 0 ? "-" : "+") + xs;
  } else if (decpt <= 0) {
    out = "0." + std::string(-decpt, '0') + digits;
  } else if (decpt >= n) {
    out = digits + std::string(decpt - n, '0') + ".0";
  } else {
    out = digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  return sign + out;
}

std::string py_repr_str(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  char hex[16];
  for (char32_t c : utf8_decode(s)) {
    if (c == static_cast<char32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) {
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(c));
      out += hex;
    } else if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x206f) ||
               c == 0x3000 || c == 0xfeff || c == 0x1680 || (c >= 0xd800 && c <= 0xdfff)) {
      if (c == 0x2010 || (c >= 0x2011 && c <= 0x2027 && c != 0x2028)) {
        utf8_append(out, c);
      } else {
        std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned>(c));
        out += hex;
      }
    } else {
      utf8_append(out, c);
    }
  }
  out += q;
  return out;
}

std::string repr(const Value& v);

// Python's str(x), which is what {{ x }} prints.
std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
      return "";
    case Kind::none:
      return "None";
    case Kind::boolean:
      return v.b ? "True" : "False";
    case Kind::integer:
      return std::to_string(v.i);
    case Kind::floating:
      return py_float_repr(v.f);
    case Kind::string:
      return v.s;
    case Kind::list: {
      if (v.seq == Seq::lazy) refuse("printing a " + v.s + " object (Python prints its address)");
      std::string out = v.seq == Seq::tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + repr((*v.list)[k]);
      if (v.seq == Seq::tuple && v.list->size() == 1) out += ",";
      return out + (v.seq == Seq::tuple ? ")" : "]");
    }
    case Kind::dict: {
      std::string out = "{";
      for (size_t k = 0; k < v.dict->items.size(); ++k)
        out += (k ? ", " : "") + repr(v.dict->items[k].first) + ": " + repr(v.dict->items[k].second);
      return out + "}";
    }
    case Kind::object:
      refuse("printing a " + type_name(v) + " object");
    case Kind::callable:
      refuse("printing a function object");
  }
  return "";
}

std::string repr(const Value& v) {
  if (v.kind == Kind::string) {
    if (v.markup) refuse("printing a Markup string inside a list or dict");
    return py_repr_str(v.s);
  }
  if (v.kind == Kind::undefined) return "Undefined";
  return to_str(v);
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
    case Kind::none:
      return false;
    case Kind::boolean:
      return v.b;
    case Kind::integer:
      return v.i != 0;
    case Kind::floating:
      return v.f != 0;
    case Kind::string:
      return !v.s.empty();
    case Kind::list:
      if (v.seq == Seq::lazy && v.s == "generator") return true;  // a generator object is always true
      return !v.list->empty();
    case Kind::dict:
      return !v.dict->items.empty();
    case Kind::object:
    case Kind::callable:
      return true;
  }
  return false;
}

// Python's ==.
bool py_eq(const Value& a, const Value& b) {
  if (is_number(a) && is_number(b)) {
    if (is_intlike(a) && is_intlike(b)) return as_int(a) == as_int(b);
    return as_float(a) == as_float(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::undefined:
    case Kind::none:
      return true;
    case Kind::string:
      return a.s == b.s;
    case Kind::list: {
      if (a.seq != b.seq) return false;
      if (a.seq == Seq::lazy) return a.list == b.list;
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!py_eq((*a.list)[k], (*b.list)[k])) return false;
      return true;
    }
    case Kind::dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        bool found = false;
        for (const auto& [k2, v2] : b.dict->items) {
          if (py_eq(k, k2)) {
            if (!py_eq(v, v2)) return false;
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
    case Kind::object:
      return a.obj == b.obj;
    case Kind::callable:
      return a.fn == b.fn;
    default:
      return false;
  }
}

// Python's a < b; throws TypeError's message for unorderable types.
bool py_lt(const Value& a, const Value& b, const char* op = "<") {
  if (is_undefined(a)) fail_undefined(a);
  if (is_undefined(b)) fail_undefined(b);
  if (is_number(a) && is_number(b)) {
    if (is_intlike(a) && is_intlike(b)) return as_int(a) < as_int(b);
    return as_float(a) < as_float(b);
  }
  if (a.kind == Kind::string && b.kind == Kind::string) return a.s < b.s;
  if (a.kind == Kind::list && b.kind == Kind::list && a.seq == b.seq && a.seq != Seq::lazy) {
    const List &x = *a.list, &y = *b.list;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (!py_eq(x[k], y[k])) return py_lt(x[k], y[k], op);
    }
    return x.size() < y.size();
  }
  fault(std::string("'") + op + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) +
        "'");
}

const Value* dict_find(const Dict& d, const Value& key) {
  for (const auto& [k, v] : d.items)
    if (py_eq(k, key)) return &v;
  return nullptr;
}

// iter(x) as a list; Undefined iterates as empty, as jinja2's does.
List iterate(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
      return {};
    case Kind::list:
      return *v.list;
    case Kind::dict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::string: {
      List chars;
      for (char32_t c : utf8_decode(v.s)) {
        std::string one;
        utf8_append(one, c);
        chars.push_back(str_value(one));
      }
      return chars;
    }
    default:
      fault("'" + type_name(v) + "' object is not iterable");
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
      return 0;
    case Kind::string:
      return static_cast<int64_t>(utf8_decode(v.s).size());
    case Kind::list:
      if (v.seq == Seq::lazy && std::string(v.s) == "generator") fault("object of type 'generator' has no len()");
      return static_cast<int64_t>(v.list->size());
    case Kind::dict:
      return static_cast<int64_t>(v.dict->items.size());
    default:
      fault("object of type '" + type_name(v) + "' has no len()");
  }
}

// Python's `item in container`.
bool py_in(const Value& item, const Value& container) {
  switch (container.kind) {
    case Kind::undefined:
      return false;
    case Kind::string:
      if (item.kind != Kind::string) fault("'in <string>' requires string as left operand, not " + type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Kind::list:
      for (const auto& x : *container.list)
        if (py_eq(x, item)) return true;
      return false;
    case Kind::dict:
      return dict_find(*container.dict, item) != nullptr;
    default:
      fault("argument of type '" + type_name(container) + "' is not iterable");
  }
}

// ---------------------------------------------------------------------------------------------
// json.dumps as transformers' tojson calls it (ensure_ascii=False by default).

struct JsonStyle {
  bool pretty = false;  // indent is not None
  std::string indent;
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false, ensure_ascii = false;
};

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  char hex[16];
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7e)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            std::snprintf(hex, sizeof hex, "\\u%04x\\u%04x", static_cast<unsigned>(0xd800 | (v >> 10)),
                          static_cast<unsigned>(0xdc00 | (v & 0x3ff)));
          } else {
            std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned>(c));
          }
          out += hex;
        } else {
          utf8_append(out, c);
        }
    }
  }
  out += '"';
}

std::string json_key(const Value& k) {
  switch (k.kind) {
    case Kind::string:
      return k.s;
    case Kind::none:
      return "null";
    case Kind::boolean:
      return k.b ? "true" : "false";
    case Kind::integer:
      return std::to_string(k.i);
    case Kind::floating:
      return py_float_repr(k.f);
    default:
      fault("keys must be str, int, float, bool or None, not " + type_name(k));
  }
}

void json_dump(std::string& out, const Value& v, const JsonStyle& st, int depth) {
  const auto newline = [&](int d) {
    out += '\n';
    for (int k = 0; k < d; ++k) out += st.indent;
  };
  switch (v.kind) {
    case Kind::none:
      out += "null";
      return;
    case Kind::boolean:
      out += v.b ? "true" : "false";
      return;
    case Kind::integer:
      out += std::to_string(v.i);
      return;
    case Kind::floating:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f > 0 ? "Infinity" : "-Infinity";
      else
        out += py_float_repr(v.f);
      return;
    case Kind::string:
      json_string(out, v.s, st.ensure_ascii);
      return;
    case Kind::list: {
      if (v.seq == Seq::lazy) fault("Object of type " + v.s + " is not JSON serializable");
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += st.item_sep;
        if (st.pretty) newline(depth + 1);
        json_dump(out, (*v.list)[k], st, depth + 1);
      }
      if (st.pretty) newline(depth);
      out += ']';
      return;
    }
    case Kind::dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, x] : v.dict->items) items.emplace_back(json_key(k), &x);
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += st.item_sep;
        if (st.pretty) newline(depth + 1);
        json_string(out, items[k].first, st.ensure_ascii);
        out += st.key_sep;
        json_dump(out, *items[k].second, st, depth + 1);
      }
      if (st.pretty) newline(depth);
      out += '}';
      return;
    }
    default:
      fault("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none_value();
    case nlohmann::ordered_json::value_t::boolean:
      return bool_value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return int_value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return int_value(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float:
      return float_value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return str_value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& x : j) items.push_back(from_json(x));
      return list_value(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(str_value(it.key()), from_json(it.value()));
      return dict_value(std::move(d));
    }
    default:
      throw Error("chat template context: binary JSON values are not supported");
  }
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// The tree.

struct Expr;
using ExprP = std::shared_ptr<const Expr>;

enum class EK {
  constant,
  name,
  list,
  tuple,
  dict,
  getattr,
  getitem,
  slice,
  call,
  filter,
  test,
  unary,
  binary,
  compare,
  and_,
  or_,
  cond,
  concat
};

struct Expr {
  EK kind;
  int line = 0;
  Value value;               // constant
  std::string name;          // name, attribute, filter, test, operator
  std::vector<ExprP> items;  // list/tuple items, dict keys and values alternating, arguments, compare/concat operands
  std::vector<std::string> ops;  // compare operators
  std::vector<std::pair<std::string, ExprP>> kwargs;
  ExprP a, b, c;  // operands (a: object / callee / filtered value; slice: start, stop, step)
  bool negated = false;
};

struct Stmt;
using StmtP = std::shared_ptr<const Stmt>;
using Body = std::vector<StmtP>;

struct Target {
  std::vector<std::string> names;  // one name, or a tuple to unpack
  bool tuple = false;
  std::string attr;  // set ns.attr: names[0] is the namespace
};

enum class SK { text, print, if_, for_, set, set_block, macro, break_, continue_, with, filter_block, generation };

struct Stmt {
  SK kind;
  int line = 0;
  std::string text;
  ExprP expr;  // print, for's iterable, set's value
  Target target;
  std::vector<std::pair<ExprP, Body>> branches;  // if / elif
  Body body, else_body;
  ExprP cond;                       // for's inline `if`
  std::vector<ExprP> filters;       // set block / filter block: filter nodes applied in order (operand a is null)
  std::vector<std::string> params;  // macro
  std::vector<ExprP> defaults;      // macro, null where none
  bool varargs = false, kwargs = false;
  std::vector<std::pair<Target, ExprP>> assigns;  // with
};

}  // namespace

struct TemplateBody {
  Body body;
};

namespace {

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

  ExprP parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprP parse_condexpr() {
    ExprP expr1 = parse_or();
    while (is_name("if")) {
      const int line = next().line;
      ExprP expr2 = parse_or();
      ExprP expr3;
      if (is_name("else")) {
        next();
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
    while (is_name("or")) {
      auto e = node(EK::or_, next().line);
      e->a = left;
      e->b = parse_and();
      left = e;
    }
    return left;
  }

  ExprP parse_and() {
    ExprP left = parse_not();
    while (is_name("and")) {
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
    while (is_op("+") || is_op("-")) {
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
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      left = binary(t.text, left, parse_pow(), t.line);
    }
    return left;
  }

  ExprP parse_pow() {
    ExprP left = parse_unary(true);
    while (is_op("**")) {
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
    for (;;) {
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
      n += "." + expect_name();
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
    for (;;) {
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
  std::vector<std::string> names_;  // every name read, for macros' varargs / kwargs / caller
};

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

// The first code point title-cased, as str.capitalize() and str.title() write it.
void append_titled(std::u32string& out, char32_t c) {
  if (c == 0xdf)
    out += U"Ss";
  else
    out += to_upper_cp(c);
}

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

// ---------------------------------------------------------------------------------------------
// The tree walker.

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopeP = std::shared_ptr<Scope>;

ScopeP child_of(const ScopeP& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

// A builtin's parameters bound Python-style: positional first, then by keyword.
class Params {
 public:
  Params(const Args& a, std::initializer_list<const char*> names, const std::string& what)
      : names_(names), values_(names.size()) {
    if (a.pos.size() > names_.size())
      fault(what + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
            std::to_string(a.pos.size()) + " given)");
    for (size_t k = 0; k < a.pos.size(); ++k) values_[k] = a.pos[k];
    for (const auto& [key, v] : a.kw) {
      const auto it = std::find_if(names_.begin(), names_.end(), [&](const char* n) { return key == n; });
      if (it == names_.end()) fault(what + "() got an unexpected keyword argument '" + key + "'");
      const size_t k = static_cast<size_t>(it - names_.begin());
      if (values_[k]) fault(what + "() got multiple values for argument '" + key + "'");
      values_[k] = v;
    }
  }
  bool has(size_t k) const { return values_[k].has_value(); }
  Value get(size_t k, Value dflt = none_value()) const { return values_[k] ? *values_[k] : dflt; }
  const Value& need(size_t k, const std::string& what) const {
    if (!values_[k]) fault(what + "() missing required argument '" + names_[k] + "'");
    return *values_[k];
  }

 private:
  std::vector<const char*> names_;
  std::vector<std::optional<Value>> values_;
};

int64_t need_int(const Value& v, const std::string& what) {
  if (!is_intlike(v)) fault(what + " must be an integer, not " + type_name(v));
  return as_int(v);
}

class Interp {
 public:
  enum class Flow { normal, break_, continue_ };

  explicit Interp(const std::string& name) : name_(name) {}

  Flow exec(const Body& body, const ScopeP& s, std::string& out) {
    for (const StmtP& st : body) {
      Flow f;
      try {
        f = exec_one(*st, s, out);
      } catch (const Fault& e) {
        rethrow(e, st->line);
      }
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

 private:
  [[noreturn]] void rethrow(const Fault& f, int line) const {
    const std::string where = name_ + " line " + std::to_string(line);
    if (f.type == Fault::unsupported) throw Unsupported(where + ": " + f.message);
    if (f.type == Fault::raised) throw Raised(where + " raised: " + f.message);
    throw Error(where + ": " + f.message);
  }

  Flow exec_one(const Stmt& st, const ScopeP& s, std::string& out) {
    switch (st.kind) {
      case SK::text:
        out += st.text;
        return Flow::normal;
      case SK::print:
        out += to_str(eval(*st.expr, s));
        return Flow::normal;
      case SK::if_:
        for (const auto& [cond, body] : st.branches)
          if (truthy(eval(*cond, s))) return exec(body, s, out);
        return exec(st.else_body, s, out);
      case SK::for_:
        return exec_for(st, s, out);
      case SK::set:
        assign(st.target, eval(*st.expr, s), s);
        return Flow::normal;
      case SK::set_block: {
        std::string text;
        exec(st.body, child_of(s), text);
        assign(st.target, apply_chain(st.filters, str_value(text), s), s);
        return Flow::normal;
      }
      case SK::macro:
        s->vars[st.text] = macro_value(st, s);
        return Flow::normal;
      case SK::break_:
        return Flow::break_;
      case SK::continue_:
        return Flow::continue_;
      case SK::with: {
        auto inner = child_of(s);
        for (const auto& [target, value] : st.assigns) assign(target, eval(*value, s), inner);
        return exec(st.body, inner, out);
      }
      case SK::filter_block: {
        std::string text;
        const Flow f = exec(st.body, child_of(s), text);
        out += to_str(apply_chain(st.filters, str_value(text), s));
        return f;
      }
      case SK::generation:
        return exec(st.body, child_of(s), out);
    }
    return Flow::normal;
  }

  Value apply_chain(const std::vector<ExprP>& filters, Value v, const ScopeP& s) {
    for (const ExprP& f : filters) v = filter(f->name, v, eval_args(*f, s));
    return v;
  }

  Flow exec_for(const Stmt& st, const ScopeP& s, std::string& out) {
    List items = iterate(eval(*st.expr, s));
    if (st.cond) {
      List kept;
      for (const Value& item : items) {
        auto probe = child_of(s);
        assign(st.target, item, probe);
        if (truthy(eval(*st.cond, probe))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(st.else_body, child_of(s), out);
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      auto iter = child_of(s);
      assign(st.target, items[k], iter);
      auto loop = std::make_shared<Object>();
      loop->type = "loop";
      loop->attrs = {{"index", int_value(k + 1)},
                     {"index0", int_value(k)},
                     {"revindex", int_value(n - k)},
                     {"revindex0", int_value(n - k - 1)},
                     {"first", bool_value(k == 0)},
                     {"last", bool_value(k == n - 1)},
                     {"length", int_value(n)},
                     {"depth", int_value(1)},
                     {"depth0", int_value(0)},
                     {"previtem", k > 0 ? items[k - 1] : undefined("there is no previous item")},
                     {"nextitem", k + 1 < n ? items[k + 1] : undefined("there is no next item")},
                     {"cycle", callable_value("cycle", [k](const Args& a) {
                        if (a.pos.empty()) fault("no items for cycling given");
                        return a.pos[static_cast<size_t>(k) % a.pos.size()];
                      })}};
      Value lv;
      lv.kind = Kind::object;
      lv.obj = loop;
      iter->vars["loop"] = lv;
      const Flow f = exec(st.body, iter, out);
      if (f == Flow::break_) break;
    }
    return Flow::normal;
  }

  void assign(const Target& t, const Value& v, const ScopeP& s) {
    if (!t.attr.empty()) {
      const Value* ns = s->find(t.names[0]);
      if (!ns || ns->kind != Kind::object || ns->obj->type != "namespace")
        fault("cannot assign attribute on non-namespace object");
      if (Value* slot = ns->obj->find(t.attr))
        *slot = v;
      else
        ns->obj->attrs.emplace_back(t.attr, v);
      return;
    }
    if (!t.tuple) {
      s->vars[t.names[0]] = v;
      return;
    }
    const List parts = iterate(v);
    if (parts.size() != t.names.size()) {
      fault(parts.size() < t.names.size()
                ? "not enough values to unpack (expected " + std::to_string(t.names.size()) + ", got " +
                      std::to_string(parts.size()) + ")"
                : "too many values to unpack (expected " + std::to_string(t.names.size()) + ")");
    }
    for (size_t k = 0; k < parts.size(); ++k) s->vars[t.names[k]] = parts[k];
  }

  Value macro_value(const Stmt& st, const ScopeP& s) {
    std::weak_ptr<Scope> home = s;
    const Stmt* m = &st;
    return callable_value(st.text, [this, home, m](const Args& a) {
      const ScopeP def = home.lock();
      if (!def) refuse("calling macro '" + m->text + "' outside the block that defined it");
      if (depth_ > 64) fault("macro '" + m->text + "' recurses too deeply");
      auto inner = child_of(def);
      List extra;
      for (size_t k = 0; k < a.pos.size(); ++k) {
        if (k < m->params.size())
          inner->vars[m->params[k]] = a.pos[k];
        else
          extra.push_back(a.pos[k]);
      }
      if (!extra.empty() && !m->varargs)
        fault("macro '" + m->text + "' takes not more than " + std::to_string(m->params.size()) + " argument(s)");
      Dict kwargs;
      for (const auto& [key, v] : a.kw) {
        const auto it = std::find(m->params.begin(), m->params.end(), key);
        if (it == m->params.end()) {
          if (!m->kwargs) fault("macro '" + m->text + "' takes no keyword argument '" + key + "'");
          kwargs.items.emplace_back(str_value(key), v);
        } else {
          inner->vars[key] = v;
        }
      }
      for (size_t k = 0; k < m->params.size(); ++k) {
        if (inner->vars.count(m->params[k])) continue;
        inner->vars[m->params[k]] = m->defaults[k] ? eval(*m->defaults[k], inner)
                                                   : undefined("parameter '" + m->params[k] + "' was not provided");
      }
      inner->vars["varargs"] = list_value(extra, Seq::tuple);
      inner->vars["kwargs"] = dict_value(kwargs);
      std::string text;
      ++depth_;
      try {
        if (exec(m->body, inner, text) != Flow::normal) fault("break or continue outside a loop in macro");
      } catch (...) {
        --depth_;
        throw;
      }
      --depth_;
      return str_value(text);
    });
  }

  // ---- expressions ----

  Args eval_args(const Expr& e, const ScopeP& s) {
    Args a;
    for (const ExprP& x : e.items) a.pos.push_back(eval(*x, s));
    for (const auto& [k, x] : e.kwargs) a.kw.emplace_back(k, eval(*x, s));
    return a;
  }

 public:
  Value eval(const Expr& e, const ScopeP& s) {
    try {
      return eval_node(e, s);
    } catch (const Fault& f) {
      rethrow(f, e.line);
    }
  }

 private:
  Value eval_node(const Expr& e, const ScopeP& s) {
    switch (e.kind) {
      case EK::constant:
        return e.value;
      case EK::name:
        return lookup(e.name, s);
      case EK::list:
      case EK::tuple: {
        List items;
        for (const ExprP& x : e.items) items.push_back(eval(*x, s));
        return list_value(std::move(items), e.kind == EK::tuple ? Seq::tuple : Seq::list);
      }
      case EK::dict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
          Value key = eval(*e.items[k], s);
          Value v = eval(*e.items[k + 1], s);
          if (key.kind == Kind::list && key.seq != Seq::tuple) fault("unhashable type: 'list'");
          if (key.kind == Kind::dict) fault("unhashable type: 'dict'");
          bool replaced = false;
          for (auto& kv : d.items)
            if (py_eq(kv.first, key)) {
              kv.second = v;
              replaced = true;
            }
          if (!replaced) d.items.emplace_back(key, v);
        }
        return dict_value(std::move(d));
      }
      case EK::getattr:
        return get_attr(eval(*e.a, s), e.name);
      case EK::getitem: {
        const Value obj = eval(*e.a, s);
        if (e.b->kind == EK::slice) {
          const auto part = [&](const ExprP& x) { return x ? eval(*x, s) : none_value(); };
          return slice(obj, part(e.b->a), part(e.b->b), part(e.b->c));
        }
        return get_item(obj, eval(*e.b, s));
      }
      case EK::slice:
        refuse("a slice outside []");
      case EK::call: {
        const Value fn = eval(*e.a, s);
        return call(fn, eval_args(e, s));
      }
      case EK::filter:
        return filter(e.name, eval(*e.a, s), eval_args(e, s));
      case EK::test: {
        const bool r = test(e.name, eval(*e.a, s), eval_args(e, s));
        return bool_value(e.negated ? !r : r);
      }
      case EK::unary: {
        const Value v = eval(*e.a, s);
        if (e.name == "not") return bool_value(!truthy(v));
        if (is_undefined(v)) fail_undefined(v);
        if (!is_number(v)) fault("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
        if (v.kind == Kind::floating) return float_value(e.name == "-" ? -v.f : v.f);
        if (e.name == "-" && as_int(v) == INT64_MIN) refuse("an integer beyond 64 bits");
        return int_value(e.name == "-" ? -as_int(v) : as_int(v));
      }
      case EK::binary:
        return binary(e.name, eval(*e.a, s), eval(*e.b, s));
      case EK::compare: {
        Value left = eval(*e.items[0], s);
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value right = eval(*e.items[k + 1], s);
          if (!compare(e.ops[k], left, right)) return bool_value(false);
          left = std::move(right);
        }
        return bool_value(true);
      }
      case EK::and_: {
        Value a = eval(*e.a, s);
        return truthy(a) ? eval(*e.b, s) : a;
      }
      case EK::or_: {
        Value a = eval(*e.a, s);
        return truthy(a) ? a : eval(*e.b, s);
      }
      case EK::cond:
        if (truthy(eval(*e.b, s))) return eval(*e.a, s);
        if (e.c) return eval(*e.c, s);
        return undefined("the inline if-expression on line " + std::to_string(e.line) +
                         " evaluated to false and no else section was defined.");
      case EK::concat: {
        std::string out;
        for (const ExprP& x : e.items) out += to_str(eval(*x, s));
        return str_value(out);
      }
    }
    return Value();
  }

  Value lookup(const std::string& name, const ScopeP& s) {
    if (const Value* v = s->find(name)) return *v;
    if (name == "range") {
      return callable_value("range", [](const Args& a) {
        if (!a.kw.empty()) fault("range() takes no keyword arguments");
        if (a.pos.empty() || a.pos.size() > 3) fault("range expected 1 to 3 arguments");
        int64_t start = 0, stop, step = 1;
        if (a.pos.size() == 1) {
          stop = need_int(a.pos[0], "range() argument");
        } else {
          start = need_int(a.pos[0], "range() argument");
          stop = need_int(a.pos[1], "range() argument");
          if (a.pos.size() == 3) step = need_int(a.pos[2], "range() argument");
        }
        if (step == 0) fault("range() arg 3 must not be zero");
        List items;
        for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
          if (items.size() >= 100000) fault("range too big, refusing to create a range of more than 100000 items");
          items.push_back(int_value(k));
        }
        return list_value(std::move(items), Seq::lazy, "range");
      });
    }
    if (name == "namespace" || name == "dict") {
      return callable_value(name, [name](const Args& a) {
        std::vector<std::pair<std::string, Value>> attrs;
        if (a.pos.size() > 1) fault(name + "() takes at most one positional argument");
        if (a.pos.size() == 1) {
          if (a.pos[0].kind != Kind::dict) refuse(name + "() from a " + type_name(a.pos[0]));
          for (const auto& [k, v] : a.pos[0].dict->items) attrs.emplace_back(json_key(k), v);
        }
        for (const auto& kv : a.kw) {
          const auto it = std::find_if(attrs.begin(), attrs.end(), [&](const auto& x) { return x.first == kv.first; });
          if (it != attrs.end())
            it->second = kv.second;
          else
            attrs.push_back(kv);
        }
        if (name == "dict") {
          Dict d;
          for (auto& [k, v] : attrs) d.items.emplace_back(str_value(k), v);
          return dict_value(std::move(d));
        }
        Value v;
        v.kind = Kind::object;
        v.obj = std::make_shared<Object>();
        v.obj->type = "namespace";
        v.obj->attrs = std::move(attrs);
        return v;
      });
    }
    if (name == "raise_exception") {
      return callable_value(name, [](const Args& a) -> Value {
        Params p(a, {"message"}, "raise_exception");
        throw Fault{Fault::raised, to_str(p.need(0, "raise_exception"))};
      });
    }
    if (name == "strftime_now") {
      return callable_value(name, [](const Args& a) {
        Params p(a, {"format"}, "strftime_now");
        const Value& fmt = p.need(0, "strftime_now");
        if (fmt.kind != Kind::string) fault("strftime() argument 1 must be str, not " + type_name(fmt));
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        char buf[512];
        const size_t n = fmt.s.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.s.c_str(), &tm);
        if (n == 0 && !fmt.s.empty()) refuse("strftime_now format '" + fmt.s + "'");
        return str_value(std::string(buf, n));
      });
    }
    if (name == "lipsum" || name == "cycler" || name == "joiner") refuse("global '" + name + "'");
    return undefined("'" + name + "' is undefined");
  }

  Value call(const Value& fn, const Args& a) {
    if (fn.kind == Kind::callable) return fn.fn->call(a);
    if (is_undefined(fn)) fail_undefined(fn);
    fault("'" + type_name(fn) + "' object is not callable");
  }

  // ---- attribute and item access (jinja2's sandboxed getattr / getitem) ----

  static bool python_attr(const std::string& name, std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
  }

  Value get_attr(const Value& obj, const std::string& name) {
    switch (obj.kind) {
      case Kind::undefined:
        fail_undefined(obj);
      case Kind::string: {
        if (python_attr(name, {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
                               "upper", "lower", "title", "capitalize", "replace", "find", "rfind", "count", "join",
                               "removeprefix", "removesuffix"}))
          return str_method(obj, name);
        if (python_attr(name,
                        {"casefold",  "center",      "encode",  "expandtabs", "format",   "format_map",   "index",
                         "isalnum",   "isalpha",     "isascii", "isdecimal",  "isdigit",  "isidentifier", "islower",
                         "isnumeric", "isprintable", "isspace", "istitle",    "isupper",  "ljust",        "maketrans",
                         "partition", "rindex",      "rjust",   "rpartition", "swapcase", "translate",    "zfill"}))
          refuse("str method '" + name + "'");
        break;
      }
      case Kind::dict: {
        if (python_attr(name, {"items", "keys", "values", "get"})) return dict_method(obj, name);
        if (python_attr(name, {"pop", "popitem", "setdefault", "update", "clear", "copy", "fromkeys"}))
          refuse("dict method '" + name + "'");
        if (const Value* v = dict_find(*obj.dict, str_value(name))) return *v;
        break;
      }
      case Kind::list:
        if (python_attr(name, {"append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove",
                               "reverse", "sort"}))
          refuse(type_name(obj) + " method '" + name + "'");
        break;
      case Kind::object: {
        if (const Value* v = obj.obj->find(name)) return *v;
        if (obj.obj->type == "loop" && python_attr(name, {"changed"})) refuse("loop." + name);
        break;
      }
      default:
        break;
    }
    return undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
  }

  Value get_item(const Value& obj, const Value& key) {
    if (is_undefined(obj)) fail_undefined(obj);
    if (obj.kind == Kind::dict) {
      if (const Value* v = dict_find(*obj.dict, key)) return *v;
    } else if ((obj.kind == Kind::list && (obj.seq != Seq::lazy || obj.s == "range")) || obj.kind == Kind::string) {
      if (is_intlike(key)) {
        const bool str = obj.kind == Kind::string;
        const std::u32string cps = str ? utf8_decode(obj.s) : std::u32string();
        const int64_t n = str ? static_cast<int64_t>(cps.size()) : static_cast<int64_t>(obj.list->size());
        int64_t k = as_int(key);
        if (k < 0) k += n;
        if (k >= 0 && k < n) {
          if (!str) return (*obj.list)[static_cast<size_t>(k)];
          std::string one;
          utf8_append(one, cps[static_cast<size_t>(k)]);
          return str_value(one);
        }
        return undefined("'" + object_type_repr(obj) + "' has no element " + to_str(key));
      }
    }
    if (key.kind == Kind::string) return get_attr_after_item(obj, key.s);
    return undefined("'" + object_type_repr(obj) + "' has no element " + repr(key));
  }

  // obj[name] where the item lookup failed: jinja2 then tries getattr(obj, name).
  Value get_attr_after_item(const Value& obj, const std::string& name) {
    if (obj.kind == Kind::dict) {
      if (python_attr(name, {"items", "keys", "values", "get"})) return dict_method(obj, name);
      return undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
    }
    return get_attr(obj, name);
  }

  Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
    if (is_undefined(obj)) fail_undefined(obj);
    const auto index = [](const Value& v, const char* what) -> std::optional<int64_t> {
      if (v.kind == Kind::none) return std::nullopt;
      if (!is_intlike(v)) fault(std::string("slice ") + what + " must be an integer or None");
      return as_int(v);
    };
    const auto start = index(start_v, "start"), stop = index(stop_v, "stop"), step_o = index(step_v, "step");
    const int64_t step = step_o.value_or(1);
    if (step == 0) fault("slice step cannot be zero");
    const bool str = obj.kind == Kind::string;
    if (!str && !(obj.kind == Kind::list && (obj.seq != Seq::lazy || obj.s == "range")))
      return undefined("'" + object_type_repr(obj) + "' cannot be sliced");
    const std::u32string cps = str ? utf8_decode(obj.s) : std::u32string();
    const int64_t n = str ? static_cast<int64_t>(cps.size()) : static_cast<int64_t>(obj.list->size());
    const auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t x = *v;
      if (x < 0) {
        x += n;
        if (x < 0) x = step < 0 ? -1 : 0;
      } else if (x >= n) {
        x = step < 0 ? n - 1 : n;
      }
      return x;
    };
    const int64_t b = adjust(start, step < 0 ? n - 1 : 0), e = adjust(stop, step < 0 ? -1 : n);
    std::u32string sout;
    List lout;
    for (int64_t k = b; step > 0 ? k < e : k > e; k += step) {
      if (str)
        sout += cps[static_cast<size_t>(k)];
      else
        lout.push_back((*obj.list)[static_cast<size_t>(k)]);
    }
    if (str) return str_value(utf8_encode(sout));
    return list_value(std::move(lout), obj.seq, obj.seq == Seq::lazy ? "range" : nullptr);
  }

  Value str_method(const Value& self, const std::string& name) {
    return callable_value("str." + name, [self, name](const Args& a) -> Value {
      const std::string& s = self.s;
      const std::string what = "str." + name;
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        Params p(a, {"chars"}, what);
        const Value chars = p.get(0);
        return str_value(py_strip(s, &chars, name != "rstrip", name != "lstrip"));
      }
      if (name == "split" || name == "rsplit") {
        Params p(a, {"sep", "maxsplit"}, what);
        return list_value(py_split(s, p.get(0), need_int(p.get(1, int_value(-1)), "maxsplit"), name == "rsplit"));
      }
      if (name == "splitlines") {
        Params p(a, {"keepends"}, what);
        List out;
        for (const auto& line : py_splitlines(utf8_decode(s), truthy(p.get(0, bool_value(false)))))
          out.push_back(str_value(utf8_encode(line)));
        return list_value(std::move(out));
      }
      if (name == "startswith" || name == "endswith") {
        Params p(a, {"prefix"}, what);
        const Value& x = p.need(0, what);
        List options = x.kind == Kind::list && x.seq == Seq::tuple ? *x.list : List{x};
        for (const Value& o : options) {
          if (o.kind != Kind::string) fault(what + " first arg must be str or a tuple of str, not " + type_name(o));
          const bool hit = name == "startswith"
                               ? s.compare(0, o.s.size(), o.s) == 0
                               : s.size() >= o.s.size() && s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
          if (hit) return bool_value(true);
        }
        return bool_value(false);
      }
      if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
        Params p(a, {}, what);
        return str_value(name == "upper"   ? py_upper(s)
                         : name == "lower" ? py_lower(s)
                         : name == "title" ? py_title(s)
                                           : py_capitalize(s));
      }
      if (name == "replace") {
        Params p(a, {"old", "new", "count"}, what);
        const Value &o = p.need(0, what), &n = p.need(1, what);
        if (o.kind != Kind::string || n.kind != Kind::string) fault(what + "() arguments must be str");
        return str_value(py_replace(s, o.s, n.s, need_int(p.get(2, int_value(-1)), "count")));
      }
      if (name == "find" || name == "rfind" || name == "count") {
        Params p(a, {"sub"}, what);
        const Value& sub = p.need(0, what);
        if (sub.kind != Kind::string) fault("must be str, not " + type_name(sub));
        if (name == "count") return int_value(py_count(s, sub.s));
        const size_t at = name == "find" ? s.find(sub.s) : s.rfind(sub.s);
        if (at == std::string::npos) return int_value(-1);
        return int_value(static_cast<int64_t>(utf8_decode(s.substr(0, at)).size()));
      }
      if (name == "join") {
        Params p(a, {"iterable"}, what);
        std::string out;
        bool first = true;
        for (const Value& x : iterate(p.need(0, what))) {
          if (x.kind != Kind::string) fault("sequence item: expected str instance, " + type_name(x) + " found");
          if (!first) out += s;
          out += x.s;
          first = false;
        }
        return str_value(out);
      }
      if (name == "removeprefix" || name == "removesuffix") {
        Params p(a, {"affix"}, what);
        const Value& x = p.need(0, what);
        if (x.kind != Kind::string) fault(what + "() argument must be str, not " + type_name(x));
        if (name == "removeprefix" && s.compare(0, x.s.size(), x.s) == 0) return str_value(s.substr(x.s.size()));
        if (name == "removesuffix" && !x.s.empty() && s.size() >= x.s.size() &&
            s.compare(s.size() - x.s.size(), x.s.size(), x.s) == 0)
          return str_value(s.substr(0, s.size() - x.s.size()));
        return str_value(s);
      }
      refuse("str method '" + name + "'");
    });
  }

  static Value dict_method(const Value& self, const std::string& name) {
    return callable_value("dict." + name, [self, name](const Args& a) -> Value {
      const std::string what = "dict." + name;
      if (name == "get") {
        Params p(a, {"key", "default"}, what);
        if (const Value* v = dict_find(*self.dict, p.need(0, what))) return *v;
        return p.get(1);
      }
      Params p(a, {}, what);
      List out;
      for (const auto& [k, v] : self.dict->items) {
        if (name == "keys")
          out.push_back(k);
        else if (name == "values")
          out.push_back(v);
        else
          out.push_back(list_value({k, v}, Seq::tuple));
      }
      return list_value(std::move(out), Seq::lazy,
                        name == "keys"     ? "dict_keys"
                        : name == "values" ? "dict_values"
                                           : "dict_items");
    });
  }

  // ---- operators ----

  static bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return py_eq(a, b);
    if (op == "!=") return !py_eq(a, b);
    if (op == "<") return py_lt(a, b, "<");
    if (op == ">") return py_lt(b, a, ">");
    if (op == "<=") return py_lt(a, b, "<=") || py_eq(a, b);
    if (op == ">=") return py_lt(b, a, ">=") || py_eq(a, b);
    if (op == "in") return py_in(a, b);
    if (op == "notin") return !py_in(a, b);
    refuse("operator '" + op + "'");
  }

  static void check_overflow(bool overflow) {
    if (overflow) refuse("an integer beyond 64 bits");
  }

  static Value binary(const std::string& op, const Value& a, const Value& b) {
    if (is_undefined(a)) fail_undefined(a);
    if (is_undefined(b)) fail_undefined(b);
    const auto unsupported_types = [&]() -> Value {
      fault("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
    };
    if (is_number(a) && is_number(b)) {
      const bool ints = is_intlike(a) && is_intlike(b);
      const int64_t x = ints ? as_int(a) : 0, y = ints ? as_int(b) : 0;
      const double fx = as_float(a), fy = as_float(b);
      int64_t r = 0;
      if (op == "+" || op == "-" || op == "*") {
        if (!ints) return float_value(op == "+" ? fx + fy : op == "-" ? fx - fy : fx * fy);
        check_overflow(op == "+"   ? __builtin_add_overflow(x, y, &r)
                       : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                   : __builtin_mul_overflow(x, y, &r));
        return int_value(r);
      }
      if (op == "/") {
        if (fy == 0) fault(ints ? "division by zero" : "float division by zero");
        return float_value(fx / fy);
      }
      if (op == "//" || op == "%") {
        if (ints) {
          if (y == 0) fault("integer division or modulo by zero");
          int64_t q = x / y, m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) {
            --q;
            m += y;
          }
          return int_value(op == "//" ? q : m);
        }
        if (fy == 0) fault("float modulo");
        // Python's float_divmod
        double mod = std::fmod(fx, fy), div = (fx - mod) / fy;
        if (mod != 0) {
          if ((fy < 0) != (mod < 0)) {
            mod += fy;
            div -= 1.0;
          }
        } else {
          mod = std::copysign(0.0, fy);
        }
        if (op == "%") return float_value(mod);
        double floordiv;
        if (div != 0) {
          floordiv = std::floor(div);
          if (div - floordiv > 0.5) floordiv += 1.0;
        } else {
          floordiv = std::copysign(0.0, fx / fy);
        }
        return float_value(floordiv);
      }
      if (op == "**") {
        if (ints && y >= 0) {
          int64_t result = 1, base = x, e = y;
          while (e > 0) {
            if (e & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
            e >>= 1;
            if (e > 0) check_overflow(__builtin_mul_overflow(base, base, &base));
          }
          return int_value(result);
        }
        if (fx == 0 && fy < 0) fault("0.0 cannot be raised to a negative power");
        return float_value(std::pow(fx, fy));
      }
      return unsupported_types();
    }
    if (a.kind == Kind::string && op == "%") refuse("'%' string formatting");
    if (op == "+") {
      if (a.kind == Kind::string && b.kind == Kind::string) {
        if (a.markup || b.markup) refuse("'+' with a Markup string (from |safe or |escape)");
        return str_value(a.s + b.s);
      }
      if (a.kind == Kind::list && b.kind == Kind::list && a.seq == b.seq && a.seq != Seq::lazy) {
        List out = *a.list;
        out.insert(out.end(), b.list->begin(), b.list->end());
        return list_value(std::move(out), a.seq);
      }
      if (a.kind == Kind::string) fault("can only concatenate str (not \"" + type_name(b) + "\") to str");
      return unsupported_types();
    }
    if (op == "*") {
      const Value* seq = is_intlike(b) ? &a : is_intlike(a) ? &b : nullptr;
      const Value* times = seq == &a ? &b : &a;
      if (seq && (seq->kind == Kind::string || (seq->kind == Kind::list && seq->seq != Seq::lazy))) {
        const int64_t n = as_int(*times);
        if (n > 100000) refuse("repeating a sequence more than 100000 times");
        if (seq->kind == Kind::string) {
          std::string out;
          for (int64_t k = 0; k < n; ++k) out += seq->s;
          return str_value(out, seq->markup);
        }
        List out;
        for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq->list->begin(), seq->list->end());
        return list_value(std::move(out), seq->seq);
      }
    }
    return unsupported_types();
  }

  // ---- filters and tests ----

  Value attribute_of(const Value& item, const std::string& path) {  // "a.b.0" as jinja2's make_attrgetter
    Value v = item;
    size_t from = 0;
    for (;;) {
      const size_t dot = path.find('.', from);
      const std::string part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
      const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
      v = get_item(v, digits ? int_value(std::stoll(part)) : str_value(part));
      if (dot == std::string::npos) return v;
      from = dot + 1;
    }
  }

  static std::string need_str(const Value& v, const std::string& what) {
    if (v.kind != Kind::string) fault(what + " must be a string, not " + type_name(v));
    return v.s;
  }

  // Sort / min / max key: the attribute, lower-cased unless case_sensitive.
  Value sort_key(const Value& item, const Value& attribute, bool case_sensitive) {
    Value k = attribute.kind == Kind::none     ? item
              : attribute.kind == Kind::string ? attribute_of(item, attribute.s)
                                               : get_item(item, attribute);
    if (!case_sensitive && k.kind == Kind::string) k = str_value(py_lower(k.s));
    return k;
  }

  List select_items(const List& items, const Args& a, bool by_attribute, bool keep_matching, const std::string& what) {
    size_t k = 0;
    std::string attr;
    if (by_attribute) {
      if (a.pos.empty()) fault(what + "() missing the attribute argument");
      attr = need_str(a.pos[k++], what + " attribute");
    }
    std::string test_name;
    Args test_args;
    if (k < a.pos.size()) {
      test_name = need_str(a.pos[k++], what + " test");
      if (!kTests.count(test_name)) refuse("test '" + test_name + "'");
      test_args.pos.assign(a.pos.begin() + static_cast<long>(k), a.pos.end());
    }
    test_args.kw = a.kw;
    List out;
    for (const Value& item : items) {
      const Value v = by_attribute ? attribute_of(item, attr) : item;
      const bool r = test_name.empty() ? truthy(v) : test(test_name, v, test_args);
      if (r == keep_matching) out.push_back(item);
    }
    return out;
  }

  Value filter(const std::string& name, const Value& v, const Args& a) {
    const auto params = [&](std::initializer_list<const char*> names) {
      Args full;
      full.pos.push_back(v);
      full.pos.insert(full.pos.end(), a.pos.begin(), a.pos.end());
      full.kw = a.kw;
      return Params(full, names, name);
    };
    if (name == "abs") {
      params({"x"});
      if (is_undefined(v)) fail_undefined(v);
      if (v.kind == Kind::floating) return float_value(std::fabs(v.f));
      if (is_intlike(v)) return int_value(std::llabs(as_int(v)));
      fault("bad operand type for abs(): '" + type_name(v) + "'");
    }
    if (name == "attr") {  // an attribute only: a dict's keys are not looked up
      const Params p = params({"obj", "name"});
      const std::string attr = need_str(p.need(1, name), "attr name");
      if (v.kind == Kind::dict && !python_attr(attr, {"items", "keys", "values", "get"}))
        return undefined("'dict object' has no attribute '" + attr + "'");
      return get_attr(v, attr);
    }
    if (name == "capitalize") {
      params({"s"});
      return str_value(py_capitalize(to_str(v)));
    }
    if (name == "count" || name == "length") {
      params({"obj"});
      return int_value(py_len(v));
    }
    if (name == "d" || name == "default") {
      const Params p = params({"value", "default_value", "boolean"});
      if (is_undefined(v) || (truthy(p.get(2, bool_value(false))) && !truthy(v))) return p.get(1, str_value(""));
      return v;
    }
    if (name == "dictsort") {
      const Params p = params({"value", "case_sensitive", "by", "reverse"});
      if (v.kind != Kind::dict) fault("dictsort needs a mapping, not " + type_name(v));
      const std::string by = to_str(p.get(2, str_value("key")));
      if (by != "key" && by != "value") fault("You can only sort by either \"key\" or \"value\"");
      const bool cs = truthy(p.get(1, bool_value(false)));
      List items;
      for (const auto& [k, x] : v.dict->items) items.push_back(list_value({k, x}, Seq::tuple));
      const size_t pos = by == "key" ? 0 : 1;
      std::stable_sort(items.begin(), items.end(), [&](const Value& l, const Value& r) {
        return py_lt(sort_key((*l.list)[pos], none_value(), cs), sort_key((*r.list)[pos], none_value(), cs));
      });
      if (truthy(p.get(3, bool_value(false)))) std::reverse(items.begin(), items.end());
      return list_value(std::move(items));
    }
    if (name == "e" || name == "escape") {
      params({"s"});
      if (v.kind == Kind::string && v.markup) return v;
      return str_value(html_escape(to_str(v)), true);
    }
    if (name == "first") {
      params({"seq"});
      const List items = iterate(v);
      return items.empty() ? undefined("No first item, sequence was empty.") : items.front();
    }
    if (name == "last") {
      params({"seq"});
      if (v.kind == Kind::list && v.seq == Seq::lazy && v.s == "generator")
        fault("'generator' object is not reversible");
      const List items = iterate(v);
      return items.empty() ? undefined("No last item, sequence was empty.") : items.back();
    }
    if (name == "float") {
      const Params p = params({"value", "default"});
      if (v.kind == Kind::floating) return v;
      if (is_intlike(v)) return float_value(static_cast<double>(as_int(v)));
      if (v.kind == Kind::string)
        if (const auto f = parse_float(v.s)) return float_value(*f);
      return p.get(1, float_value(0.0));
    }
    if (name == "int") {
      const Params p = params({"value", "default", "base"});
      const Value dflt = p.get(1, int_value(0));
      const int base = static_cast<int>(need_int(p.get(2, int_value(10)), "base"));
      if (is_intlike(v)) return int_value(as_int(v));
      if (v.kind == Kind::floating) {
        if (!std::isfinite(v.f) || std::fabs(v.f) >= 9.2e18) return dflt;
        return int_value(static_cast<int64_t>(v.f));
      }
      if (v.kind == Kind::string) {
        if (const auto i = parse_int(v.s, base)) return int_value(*i);
        if (const auto f = parse_float(v.s))
          if (std::isfinite(*f) && std::fabs(*f) < 9.2e18) return int_value(static_cast<int64_t>(*f));
      }
      return dflt;
    }
    if (name == "indent") {
      const Params p = params({"s", "width", "first", "blank"});
      const Value width = p.get(1, int_value(4));
      const std::string ind =
          width.kind == Kind::string
              ? width.s
              : std::string(static_cast<size_t>(std::max<int64_t>(0, need_int(width, "indent width"))), ' ');
      const bool first = truthy(p.get(2, bool_value(false))), blank = truthy(p.get(3, bool_value(false)));
      const auto lines = py_splitlines(utf8_decode(to_str(v) + "\n"), false);
      std::string out;
      for (size_t k = 0; k < lines.size(); ++k) {
        const std::string line = utf8_encode(lines[k]);
        if (k > 0) out += "\n";
        if (k > 0 && (blank || !line.empty())) out += ind;
        out += line;
      }
      if (first) out = ind + out;
      return str_value(out);
    }
    if (name == "items") {
      params({"value"});
      if (is_undefined(v)) return list_value({}, Seq::lazy, "generator");
      if (v.kind != Kind::dict) fault("Can only get item pairs from a mapping.");
      List out;
      for (const auto& [k, x] : v.dict->items) out.push_back(list_value({k, x}, Seq::tuple));
      return list_value(std::move(out), Seq::lazy, "generator");
    }
    if (name == "join") {
      const Params p = params({"value", "d", "attribute"});
      const std::string sep = to_str(p.get(1, str_value("")));
      const Value attr = p.get(2);
      std::string out;
      bool first = true;
      for (const Value& x : iterate(v)) {
        if (!first) out += sep;
        out += to_str(attr.kind == Kind::none ? x : sort_key(x, attr, true));
        first = false;
      }
      return str_value(out);
    }
    if (name == "list") {
      params({"value"});
      return list_value(iterate(v));
    }
    if (name == "lower") {
      params({"s"});
      return str_value(py_lower(to_str(v)));
    }
    if (name == "upper") {
      params({"s"});
      return str_value(py_upper(to_str(v)));
    }
    if (name == "map") {
      List out;
      const auto attr = std::find_if(a.kw.begin(), a.kw.end(), [](const auto& kv) { return kv.first == "attribute"; });
      if (a.pos.empty() && attr != a.kw.end()) {
        Value dflt;
        bool has_default = false;
        for (const auto& [k, x] : a.kw) {
          if (k == "default") {
            dflt = x;
            has_default = true;
          } else if (k != "attribute") {
            fault("Unexpected keyword argument '" + k + "'");
          }
        }
        for (const Value& item : iterate(v)) {
          Value x =
              attr->second.kind == Kind::string ? attribute_of(item, attr->second.s) : get_item(item, attr->second);
          if (has_default && is_undefined(x)) x = dflt;
          out.push_back(x);
        }
      } else {
        if (a.pos.empty()) fault("map requires a filter argument");
        const std::string f = need_str(a.pos[0], "map filter");
        if (!kFilters.count(f)) refuse("filter '" + f + "'");
        Args rest;
        rest.pos.assign(a.pos.begin() + 1, a.pos.end());
        rest.kw = a.kw;
        for (const Value& item : iterate(v)) out.push_back(filter(f, item, rest));
      }
      return list_value(std::move(out), Seq::lazy, "generator");
    }
    if (name == "max" || name == "min") {
      const Params p = params({"value", "case_sensitive", "attribute"});
      const List items = iterate(v);
      if (items.empty()) return undefined("No aggregated item, sequence was empty.");
      const bool cs = truthy(p.get(1, bool_value(false)));
      const Value attr = p.get(2);
      size_t best = 0;
      for (size_t k = 1; k < items.size(); ++k) {
        const Value kk = sort_key(items[k], attr, cs), kb = sort_key(items[best], attr, cs);
        if (name == "max" ? py_lt(kb, kk) : py_lt(kk, kb)) best = k;
      }
      return items[best];
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
      return list_value(select_items(iterate(v), a, name.size() > 6, name.rfind("select", 0) == 0, name), Seq::lazy,
                        "generator");
    }
    if (name == "replace") {
      const Params p = params({"s", "old", "new", "count"});
      const Value count = p.get(3);
      return str_value(py_replace(to_str(v), to_str(p.need(1, name)), to_str(p.need(2, name)),
                                  count.kind == Kind::none ? -1 : need_int(count, "count")));
    }
    if (name == "reverse") {
      params({"value"});
      if (v.kind == Kind::string) {
        std::u32string cps = utf8_decode(v.s);
        std::reverse(cps.begin(), cps.end());
        return str_value(utf8_encode(cps));
      }
      List items = iterate(v);
      std::reverse(items.begin(), items.end());
      if (v.kind == Kind::list && v.seq == Seq::lazy && v.s == "generator") return list_value(std::move(items));
      if (v.kind != Kind::list && v.kind != Kind::dict) fault("argument must be iterable");
      return list_value(std::move(items), Seq::lazy,
                        v.kind == Kind::dict ? "dict_reversekeyiterator" : "list_reverseiterator");
    }
    if (name == "round") {
      const Params p = params({"value", "precision", "method"});
      const int64_t precision = need_int(p.get(1, int_value(0)), "precision");
      const std::string method = to_str(p.get(2, str_value("common")));
      if (!is_number(v)) fault("round needs a number, not " + type_name(v));
      if (method == "common") {
        if (is_intlike(v)) {
          if (precision < 0) refuse("round with a negative precision");
          return int_value(as_int(v));
        }
        if (precision < 0 || precision > 30) refuse("round with precision " + std::to_string(precision));
        char buf[512];
        std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), v.f);
        return float_value(std::strtod(buf, nullptr));
      }
      if (method != "ceil" && method != "floor") fault("method must be common, ceil or floor");
      const double scale = std::pow(10.0, static_cast<double>(precision));
      const double x = as_float(v) * scale;
      return float_value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
    }
    if (name == "safe") {
      params({"value"});
      return str_value(to_str(v), true);
    }
    if (name == "sort") {
      const Params p = params({"value", "reverse", "case_sensitive", "attribute"});
      List items = iterate(v);
      const bool rev = truthy(p.get(1, bool_value(false))), cs = truthy(p.get(2, bool_value(false)));
      const Value attr = p.get(3);
      std::vector<Value> keys;
      for (const Value& x : items) keys.push_back(sort_key(x, attr, cs));
      std::vector<size_t> order(items.size());
      for (size_t k = 0; k < order.size(); ++k) order[k] = k;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t l, size_t r) { return rev ? py_lt(keys[r], keys[l]) : py_lt(keys[l], keys[r]); });
      List out;
      for (size_t k : order) out.push_back(items[k]);
      return list_value(std::move(out));
    }
    if (name == "string") {
      params({"value"});
      return v.kind == Kind::string ? v : str_value(to_str(v));
    }
    if (name == "sum") {
      const Params p = params({"iterable", "attribute", "start"});
      Value total = p.get(2, int_value(0));
      const Value attr = p.get(1);
      for (const Value& x : iterate(v))
        total = binary("+", total, attr.kind == Kind::none ? x : sort_key(x, attr, true));
      return total;
    }
    if (name == "title") {
      params({"s"});
      return str_value(jinja_title(to_str(v)));
    }
    if (name == "tojson") {
      const Params p = params({"x", "ensure_ascii", "indent", "separators", "sort_keys"});
      JsonStyle st;
      st.ensure_ascii = truthy(p.get(1, bool_value(false)));
      const Value indent = p.get(2);
      if (indent.kind != Kind::none) {
        st.pretty = true;
        st.indent = indent.kind == Kind::string
                        ? indent.s
                        : std::string(static_cast<size_t>(std::max<int64_t>(0, need_int(indent, "indent"))), ' ');
        st.item_sep = ",";
      }
      const Value seps = p.get(3);
      if (seps.kind != Kind::none) {
        if (seps.kind != Kind::list || seps.list->size() != 2) fault("separators must be an (item, key) pair");
        st.item_sep = need_str((*seps.list)[0], "item separator");
        st.key_sep = need_str((*seps.list)[1], "key separator");
      }
      st.sort_keys = truthy(p.get(4, bool_value(false)));
      std::string out;
      json_dump(out, v, st, 0);
      return str_value(out);
    }
    if (name == "trim") {
      const Params p = params({"value", "chars"});
      const Value chars = p.get(1);
      return str_value(py_strip(to_str(v), &chars, true, true));
    }
    if (name == "unique") {
      const Params p = params({"value", "case_sensitive", "attribute"});
      const bool cs = truthy(p.get(1, bool_value(false)));
      const Value attr = p.get(2);
      List out, seen;
      for (const Value& x : iterate(v)) {
        const Value key = sort_key(x, attr, cs);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_eq(s, key); })) continue;
        seen.push_back(key);
        out.push_back(x);
      }
      return list_value(std::move(out), Seq::lazy, "generator");
    }
    refuse("filter '" + name + "'");
  }

  bool test(const std::string& name, const Value& v, const Args& a) {
    const auto arg = [&](const char* what) -> const Value& {
      if (a.pos.size() != 1 || !a.kw.empty()) fault("test '" + name + "' takes one argument (" + what + ")");
      return a.pos[0];
    };
    const auto none_args_ok = [&]() {
      if (!a.pos.empty() || !a.kw.empty()) fault("test '" + name + "' takes no arguments");
      return true;
    };
    if (name == "defined") return none_args_ok() && !is_undefined(v);
    if (name == "undefined") return none_args_ok() && is_undefined(v);
    if (name == "none") return none_args_ok() && v.kind == Kind::none;
    if (name == "boolean") return none_args_ok() && v.kind == Kind::boolean;
    if (name == "true") return none_args_ok() && v.kind == Kind::boolean && v.b;
    if (name == "false") return none_args_ok() && v.kind == Kind::boolean && !v.b;
    if (name == "integer") return none_args_ok() && v.kind == Kind::integer;
    if (name == "float") return none_args_ok() && v.kind == Kind::floating;
    if (name == "number") return none_args_ok() && is_number(v);
    if (name == "string") return none_args_ok() && v.kind == Kind::string;
    if (name == "mapping") return none_args_ok() && v.kind == Kind::dict;
    if (name == "callable") return none_args_ok() && v.kind == Kind::callable;
    if (name == "escaped") return none_args_ok() && v.kind == Kind::string && v.markup;
    if (name == "iterable")
      return none_args_ok() && (v.kind == Kind::undefined || v.kind == Kind::string || v.kind == Kind::list ||
                                v.kind == Kind::dict || (v.kind == Kind::object && v.obj->type == "loop"));
    if (name == "sequence")
      return none_args_ok() && (v.kind == Kind::undefined || v.kind == Kind::string || v.kind == Kind::dict ||
                                (v.kind == Kind::list && (v.seq != Seq::lazy || v.s == "range")));
    if (name == "odd" || name == "even") {
      none_args_ok();
      const Value m = binary("%", v, int_value(2));
      return py_eq(m, int_value(name == "odd" ? 1 : 0));
    }
    if (name == "divisibleby") return py_eq(binary("%", v, arg("num")), int_value(0));
    if (name == "eq" || name == "equalto" || name == "==") return py_eq(v, arg("other"));
    if (name == "ne" || name == "!=") return !py_eq(v, arg("other"));
    if (name == "lt" || name == "lessthan" || name == "<") return compare("<", v, arg("other"));
    if (name == "le" || name == "<=") return compare("<=", v, arg("other"));
    if (name == "gt" || name == "greaterthan" || name == ">") return compare(">", v, arg("other"));
    if (name == "ge" || name == ">=") return compare(">=", v, arg("other"));
    if (name == "in") return py_in(v, arg("seq"));
    if (name == "filter") return none_args_ok() && v.kind == Kind::string && kFilters.count(v.s) > 0;
    if (name == "test") return none_args_ok() && v.kind == Kind::string && kTests.count(v.s) > 0;
    if (name == "lower" || name == "upper") {
      none_args_ok();
      const std::u32string cps = utf8_decode(to_str(v));
      check_case(cps, "a case test");
      bool any = false;
      for (char32_t c : cps) {
        if (!cased(c)) continue;
        any = true;
        if (name == "lower" ? to_lower_cp(c) != c : to_upper_cp(c) != c) return false;
      }
      return any;
    }
    if (name == "sameas") {
      const Value& o = arg("other");
      if (v.kind == Kind::none || o.kind == Kind::none) return v.kind == o.kind;
      if (v.kind == Kind::boolean || o.kind == Kind::boolean) return v.kind == o.kind && v.b == o.b;
      if (v.kind == Kind::list && o.kind == Kind::list) return v.list == o.list;
      if (v.kind == Kind::dict && o.kind == Kind::dict) return v.dict == o.dict;
      if (v.kind == Kind::object && o.kind == Kind::object) return v.obj == o.obj;
      refuse("the sameas test on " + type_name(v) + " values");
    }
    refuse("test '" + name + "'");
  }

  std::string name_;
  int depth_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  Lexer lexer(source, name_);
  Parser parser(lexer.run(), name_);
  auto body = std::make_shared<TemplateBody>();
  body->body = parser.parse();
  body_ = std::move(body);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) throw Error(name_ + ": the render context must be a JSON object");
  auto scope = std::make_shared<Scope>();
  for (auto it = context.begin(); it != context.end(); ++it) scope->vars[it.key()] = from_json(it.value());
  Interp interp(name_);
  std::string out;
  if (interp.exec(body_->body, scope, out) != Interp::Flow::normal)
    throw Error(name_ + ": break or continue outside a loop");
  return out;
}

}  // namespace kmoe::jinja
