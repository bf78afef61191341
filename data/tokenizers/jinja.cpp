// See jinja.h. The Template class ties the interpreter's parts together: jinja_parse lexes and
// parses the source into a tree once, and jinja_render walks that tree for each render, both
// over the Python-semantics values of jinja_value (and the str methods of jinja_str).
#include "data/tokenizers/jinja.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "data/tokenizers/jinja_parse.h"
#include "data/tokenizers/jinja_render.h"

namespace kmoe::jinja {

struct TemplateBody {
  detail::Body body;
};

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  auto body = std::make_shared<TemplateBody>();
  body->body = detail::parse(source, name_);
  body_ = std::move(body);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) throw Error(name_ + ": the render context must be a JSON object");
  return detail::render(body_->body, context, name_);
}

}  // namespace kmoe::jinja
