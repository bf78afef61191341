// The value model behind the interpreter: UTF-8 code-point helpers, Python's str(), repr(), ==,
// <, truthiness, len(), `in` and iteration over jinja2's values, json.dumps as tojson calls it,
// and the conversion from the render context's JSON. The types themselves are in jinja_value.h;
// kept apart from the lexer, parser and tree walker, which all build on these semantics.
#include "data/tokenizers/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizers/jinja.h"

namespace kmoe::jinja::detail {

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

// ---------------------------------------------------------------------------------------------
// Values: Python's types as jinja2 sees them, plus jinja2's Undefined.

[[noreturn]] void fault(const std::string& message) {
  throw Fault{Fault::error, message};
}
[[noreturn]] void refuse(const std::string& message) {
  throw Fault{Fault::unsupported, message + " is not supported"};
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

namespace {

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
      // the spaces, separators and format characters Python's str.isprintable() rejects
      std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned>(c));
      out += hex;
    } else {
      utf8_append(out, c);
    }
  }
  out += q;
  return out;
}

}  // namespace

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

// Whether a list value has a length: a lazy one only when it stands for a range or a dict view,
// not for an iterator (a generator, reversed()).
bool sized(const Value& v) {
  return v.seq != Seq::lazy || v.s == "range" || v.s == "dict_keys" || v.s == "dict_values" || v.s == "dict_items";
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
      return !sized(v) || !v.list->empty();  // an iterator object is always true
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
bool py_lt(const Value& a, const Value& b, const char* op) {
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
      if (!sized(v)) fault("object of type '" + v.s + "' has no len()");
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

namespace {

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

}  // namespace

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

}  // namespace kmoe::jinja::detail
