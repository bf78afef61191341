// A Jinja subset interpreter for HF chat templates: it renders a model's own template the way
// transformers' apply_chat_template does (jinja2 in an ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks, loop controls, the {% generation %} tag, raise_exception,
// strftime_now and transformers' tojson), instead of guessing the format from substrings.
// Values follow Python's semantics (str(), ==, truthiness, json.dumps, code-point strings),
// because the renders must match byte for byte. Whatever it does not implement is refused with
// an Error naming the construct and the template line, never rendered approximately.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>

namespace kmoe::jinja {

// Every failure; what() reads "<name> line N: ...". Syntax errors, Python-level errors the same
// template raises in jinja2 too (e.g. "'x' is undefined" when x is used in arithmetic), and
// the two kinds below.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The template's own raise_exception(message): it rejects the conversation.
struct Raised : Error {
  using Error::Error;
};
// A construct (filter, test, statement, method, global) the interpreter does not implement.
struct Unsupported : Error {
  using Error::Error;
};

struct TemplateBody;

class Template {
 public:
  // Parses `source`; throws Error / Unsupported for syntax errors and for filters, tests and
  // statements it does not implement. `name` prefixes every error ("chat template line 3: ...").
  explicit Template(const std::string& source, std::string name = "chat template");
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // The template rendered with the variables of `context` (a JSON object; key order is kept, as
  // Python dicts keep it, for tojson and dict iteration). Throws Error (Raised, Unsupported).
  std::string render(const nlohmann::ordered_json& context) const;

 private:
  std::string name_;
  std::shared_ptr<const TemplateBody> body_;
};

}  // namespace kmoe::jinja
