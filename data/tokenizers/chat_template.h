// Chat formats rendered in C++ instead of running the model's Jinja template: a model's
// template is recognised once (chat_format_detect) and mapped to one of the few formats
// LLaMA-family models use, and chat_render writes exactly the string that template renders,
// BOS text included, so callers encode the result with add_special = false.
#pragma once

#include <string>
#include <vector>

namespace kmoe {

enum class ChatFormat { chatml, llama2, llama3 };

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatTemplate {
  ChatFormat format = ChatFormat::chatml;
  // chatml: the system message inserted when the first message is not a system one ("" for
  // none; SmolLM2's template inserts one).
  std::string default_system;
  std::string bos = "<s>", eos = "</s>";  // llama2's; llama3 uses "<|begin_of_text|>"
};

// Recognises a model's Jinja chat template (HF tokenizer_config.json's or GGUF's
// tokenizer.chat_template). Throws when it is none of the known formats.
ChatTemplate chat_format_detect(const std::string& jinja_template);
// "chatml", "llama2", "llama3" (a config option); throws for anything else.
ChatTemplate chat_format_parse(const std::string& name);
const char* chat_format_name(ChatFormat format);

// The prompt text for `messages`; add_generation_prompt opens the assistant's turn (llama2
// has no such header and ignores it). Throws for roles the format cannot express.
std::string chat_render(const ChatTemplate& format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace kmoe
