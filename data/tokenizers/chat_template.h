// A model's chat template: its own Jinja source (tokenizer_config.json's or the GGUF's
// tokenizer.chat_template) rendered by data/tokenizers/jinja.h exactly as transformers'
// apply_chat_template renders it, with the tokenizer's BOS/EOS text as bos_token / eos_token.
// The result includes whatever BOS text the template writes, so callers encode it with
// add_special = false. A template the interpreter cannot render is refused when it is parsed
// or first rendered, never approximated.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace kmoe {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;  // system | user | assistant (| tool, for templates that take it)
  std::string content;
};

struct ChatTemplate {
  std::string source;  // the Jinja text
  // The tokenizer's BOS / EOS text, the template's bos_token / eos_token; "" when the tokenizer
  // has none, and the variable is then undefined, as in transformers.
  std::string bos_token, eos_token;
  std::shared_ptr<const jinja::Template> compiled;
};

// Parses `source`; throws jinja::Error (a std::runtime_error) naming the template line and the
// construct for syntax errors and for filters, tests and statements the interpreter lacks.
ChatTemplate chat_template_make(const std::string& source, const std::string& bos_token, const std::string& eos_token);
// Built-in templates for the named formats a config option may ask for: "chatml", "llama2"
// (Meta's, with <s> / </s>), "llama3" (Meta's, with <|begin_of_text|> / <|eot_id|>). Throws for
// any other name.
ChatTemplate chat_format_parse(const std::string& name);

// The prompt text for `messages`; add_generation_prompt opens the assistant's turn where the
// template has such a header. Throws std::runtime_error (jinja::Raised) where the template's
// raise_exception rejects the conversation, and jinja::Error for anything it cannot render.
std::string chat_render(const ChatTemplate& chat, const std::vector<ChatMessage>& messages, bool add_generation_prompt);
// The same for messages as JSON objects (OpenAI style: tool_calls, tool results, null content)
// and `tools`, a list of JSON schemas or null.
std::string chat_render_json(const ChatTemplate& chat, const nlohmann::ordered_json& messages,
                             bool add_generation_prompt, const nlohmann::ordered_json& tools);

// The texts that can end an assistant turn, best first: the end-of-turn markers the template
// spells out (<|im_end|>, <|eot_id|>, <|end|>, <end_of_turn>, </s>), then its EOS token. The
// caller keeps those its vocabulary has.
std::vector<std::string> chat_turn_end_tokens(const ChatTemplate& chat);

}  // namespace kmoe
