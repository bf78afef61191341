// Internal to the Jinja interpreter (the public header is jinja.h): the value model every part
// shares. Values follow Python's semantics as jinja2 sees them (str(), ==, <, truthiness, len(),
// iteration, code-point strings) plus jinja2's Undefined, because renders must match transformers'
// byte for byte; also json.dumps as tojson calls it and the conversion from the render context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

namespace kmoe::jinja::detail {

// Strings are UTF-8; Python indexes, slices, measures and strips them by code point.
std::u32string utf8_decode(const std::string& s);
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(const std::u32string& s);
// Python's str.isspace().
bool py_space(char32_t c);

// Values: Python's types as jinja2 sees them, plus jinja2's Undefined.

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

[[noreturn]] void fault(const std::string& message);
[[noreturn]] void refuse(const std::string& message);  // throws "<message> is not supported"

inline Value undefined(const std::string& why) {
  Value v;
  v.s = why;
  return v;
}
inline Value none_value() {
  Value v;
  v.kind = Kind::none;
  return v;
}
inline Value bool_value(bool b) {
  Value v;
  v.kind = Kind::boolean;
  v.b = b;
  return v;
}
inline Value int_value(int64_t i) {
  Value v;
  v.kind = Kind::integer;
  v.i = i;
  return v;
}
inline Value float_value(double f) {
  Value v;
  v.kind = Kind::floating;
  v.f = f;
  return v;
}
inline Value str_value(std::string s, bool markup = false) {
  Value v;
  v.kind = Kind::string;
  v.s = std::move(s);
  v.markup = markup;
  return v;
}
inline Value list_value(List items, Seq seq = Seq::list, const char* lazy_type = nullptr) {
  Value v;
  v.kind = Kind::list;
  v.seq = seq;
  if (lazy_type) v.s = lazy_type;
  v.list = std::make_shared<const List>(std::move(items));
  return v;
}
inline Value dict_value(Dict d) {
  Value v;
  v.kind = Kind::dict;
  v.dict = std::make_shared<const Dict>(std::move(d));
  return v;
}
inline Value callable_value(std::string name, std::function<Value(const Args&)> fn) {
  Value v;
  v.kind = Kind::callable;
  v.fn = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

inline bool is_undefined(const Value& v) {
  return v.kind == Kind::undefined;
}
inline bool is_number(const Value& v) {
  return v.kind == Kind::boolean || v.kind == Kind::integer || v.kind == Kind::floating;
}
inline bool is_intlike(const Value& v) {
  return v.kind == Kind::boolean || v.kind == Kind::integer;
}
inline int64_t as_int(const Value& v) {
  return v.kind == Kind::boolean ? v.b : v.i;
}
inline double as_float(const Value& v) {
  return v.kind == Kind::floating ? v.f : static_cast<double>(as_int(v));
}

[[noreturn]] void fail_undefined(const Value& v);
// Python's type(x).__name__.
std::string type_name(const Value& v);
// jinja2's object_type_repr, used in its undefined messages.
std::string object_type_repr(const Value& v);
// Python's str(x), which is what {{ x }} prints.
std::string to_str(const Value& v);
// Python's repr(x).
std::string repr(const Value& v);
// Whether a list value has a length: a lazy one only when it stands for a range or a dict view,
// not for an iterator (a generator, reversed()).
bool sized(const Value& v);
bool truthy(const Value& v);
// Python's ==.
bool py_eq(const Value& a, const Value& b);
// Python's a < b; throws TypeError's message for unorderable types.
bool py_lt(const Value& a, const Value& b, const char* op = "<");
const Value* dict_find(const Dict& d, const Value& key);
// iter(x) as a list; Undefined iterates as empty, as jinja2's does.
List iterate(const Value& v);
int64_t py_len(const Value& v);
// Python's `item in container`.
bool py_in(const Value& item, const Value& container);

// json.dumps as transformers' tojson calls it (ensure_ascii=False by default).
struct JsonStyle {
  bool pretty = false;  // indent is not None
  std::string indent;
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false, ensure_ascii = false;
};

// A dict key as json.dumps writes it (str, int, float, bool or None).
std::string json_key(const Value& k);
void json_dump(std::string& out, const Value& v, const JsonStyle& st, int depth);
// The render context's JSON as values; object key order is kept, as Python dicts keep it.
Value from_json(const nlohmann::ordered_json& j);

}  // namespace kmoe::jinja::detail
