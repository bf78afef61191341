// libFuzzer target for the chat-template interpreter (data/tokenizers/jinja*): a model's
// chat template is untrusted input (any tokenizer_config.json or GGUF a user downloads), so
// parsing and rendering any bytes must end in output or a kmoe::jinja::Error, never a crash,
// a hang, an undefined behaviour or another exception. Run by tests/scripts/fuzz_jinja.sh
// with AddressSanitizer and UBSan, seeded with the real templates of the parity fixture.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/tokenizers/jinja.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json c = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "What is 2 + 3?"},
      {"role": "assistant", "content": "5", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
      {"role": "tool", "content": "5"},
      {"role": "user", "content": " Grüße \n"}],
    "tools": [{"type": "function", "function": {"name": "add", "description": "a + b",
      "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}],
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true})");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const kmoe::jinja::Template t(source, "fuzz");
    (void)t.render(context());
  } catch (const kmoe::jinja::Error&) {
    // a refusal or an error the template itself makes: the documented outcome
  }
  return 0;
}
