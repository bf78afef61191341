// See chat_template.h. The render context is the one transformers 4.46 passes: messages,
// tools and documents (None unless given), add_generation_prompt, and the special tokens the
// tokenizer has. The named formats are the reference templates of those model families.
#include "data/tokenizers/chat_template.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/tokenizers/jinja.h"

namespace kmoe {

namespace {

const char* const kChatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char* const kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
    "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0)"
    " %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
    "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
    "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + "
    "' ' + eos_token }}{% endif %}{% endfor %}";

const char* const kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\n\n' }}{% endif %}";

}  // namespace

ChatTemplate chat_template_make(const std::string& source, const std::string& bos_token, const std::string& eos_token) {
  ChatTemplate t;
  t.source = source;
  t.bos_token = bos_token;
  t.eos_token = eos_token;
  t.compiled = std::make_shared<const jinja::Template>(source);
  return t;
}

ChatTemplate chat_format_parse(const std::string& name) {
  if (name == "chatml") return chat_template_make(kChatml, "", "");
  if (name == "llama2") return chat_template_make(kLlama2, "<s>", "</s>");
  if (name == "llama3") return chat_template_make(kLlama3, "<|begin_of_text|>", "<|eot_id|>");
  throw std::runtime_error("unknown chat format '" + name + "' (known: chatml, llama2, llama3)");
}

std::string chat_render_json(const ChatTemplate& chat, const nlohmann::ordered_json& messages,
                             bool add_generation_prompt, const nlohmann::ordered_json& tools) {
  if (!chat.compiled) throw std::runtime_error("chat_render: no chat template");
  nlohmann::ordered_json context = {{"messages", messages},
                                    {"tools", tools},
                                    {"documents", nullptr},
                                    {"add_generation_prompt", add_generation_prompt}};
  if (!chat.bos_token.empty()) context["bos_token"] = chat.bos_token;
  if (!chat.eos_token.empty()) context["eos_token"] = chat.eos_token;
  return chat.compiled->render(context);
}

std::string chat_render(const ChatTemplate& chat, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  return chat_render_json(chat, list, add_generation_prompt, nullptr);
}

std::vector<std::string> chat_turn_end_tokens(const ChatTemplate& chat) {
  std::vector<std::string> out;
  for (const char* marker : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>"}) {
    if (chat.source.find(marker) != std::string::npos) out.emplace_back(marker);
  }
  if (!chat.eos_token.empty() && std::find(out.begin(), out.end(), chat.eos_token) == out.end())
    out.push_back(chat.eos_token);
  return out;
}

}  // namespace kmoe
