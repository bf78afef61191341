// Internal to the Jinja interpreter (the public header is jinja.h): render(), the tree walker
// in jinja_render.cpp, which executes a parsed template's statements and evaluates its
// expressions, filters, tests, methods and globals with Python-semantics values.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "data/tokenizers/jinja_parse.h"

namespace kmoe::jinja::detail {

// `body` rendered with the variables of `context` (a JSON object); throws Error (Raised,
// Unsupported) with "<name> line N: " for failures at a tree node.
std::string render(const Body& body, const nlohmann::ordered_json& context, const std::string& name);

}  // namespace kmoe::jinja::detail
