// The tree walker: executes the statements and evaluates the expressions of a parsed template
// with Python-semantics values, including jinja2's filters, tests, the str / dict / list methods
// templates call and the globals transformers provides (raise_exception, strftime_now, ...).
// Python-level failures are raised as Fault deep inside and turned into an Error carrying the
// template line at the nearest tree node.
#include "data/tokenizers/jinja_render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizers/jinja.h"
#include "data/tokenizers/jinja_str.h"

namespace kmoe::jinja::detail {

namespace {

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
    for (const auto& kv : a.kw) {  // not a structured binding: clang 14 cannot capture one in a lambda
      const std::string& key = kv.first;
      const Value& v = kv.second;
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
      if (v.kind == Kind::list && !sized(v)) fault("'" + v.s + "' object is not reversible");
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
      if (v.kind == Kind::list && !sized(v)) return list_value(std::move(items));  // reversed() fails: a list
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

std::string render(const Body& body, const nlohmann::ordered_json& context, const std::string& name) {
  auto scope = std::make_shared<Scope>();
  for (auto it = context.begin(); it != context.end(); ++it) scope->vars[it.key()] = from_json(it.value());
  Interp interp(name);
  std::string out;
  if (interp.exec(body, scope, out) != Interp::Flow::normal) throw Error(name + ": break or continue outside a loop");
  return out;
}

}  // namespace kmoe::jinja::detail
