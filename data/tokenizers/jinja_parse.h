// Internal to the Jinja interpreter (the public header is jinja.h): the tree a template parses
// to, and parse(), which lexes and parses a source into it (jinja_parse.cpp). The tree walker
// (jinja_render) reads these nodes; the names of the filters and tests the parser accepts are
// shared with it for the `filter` and `test` tests and the map / select filters.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizers/jinja_value.h"

namespace kmoe::jinja::detail {

// The filters and tests the interpreter implements; the parser refuses any other.
extern const std::set<std::string> kFilters;
extern const std::set<std::string> kTests;

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

// The tree of `source`; throws Error / Unsupported, prefixed "<name> line N: ".
Body parse(const std::string& source, const std::string& name);

}  // namespace kmoe::jinja::detail
