// Chat formats: see chat_template.h. Each renderer mirrors the reference Jinja template
// line for line (llama2 and llama3 strip/trim message text exactly where those do).
#include "data/tokenizers/chat_template.h"

#include <stdexcept>

namespace kmoe {

namespace {

bool contains(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

// Python's str.strip() / Jinja's trim for the whitespace chat text contains.
std::string strip(const std::string& s) {
  const char* space = " \t\n\r\v\f";
  const size_t begin = s.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

std::string render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  std::string out;
  if (!messages.empty() && messages[0].role != "system" && !t.default_system.empty()) {
    out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
  }
  for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (generation) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_llama2(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  size_t first = 0;
  std::string system;
  bool has_system = false;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    has_system = true;
    first = 1;
  }
  std::string out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool user_turn = (i - first) % 2 == 0;
    if ((m.role == "user") != user_turn || (m.role != "user" && m.role != "assistant")) {
      throw std::runtime_error("llama2 chat format: message " + std::to_string(i) + " has role '" + m.role +
                               "'; roles must alternate user/assistant after an optional system message");
    }
    std::string content = m.content;
    if (i == first && has_system) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
    // appended piece by piece: GCC 12 misreads chained operator+ here (-Wstringop-overflow)
    if (m.role == "user") {
      out.append(t.bos).append("[INST] ").append(strip(content)).append(" [/INST]");
    } else {
      out.append(" ").append(strip(content)).append(" ").append(t.eos);
    }
  }
  return out;
}

std::string render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += t.bos;
    out +=
        "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + strip(messages[i].content) + "<|eot_id|>";
  }
  if (generation) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace

const char* chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::chatml:
      return "chatml";
    case ChatFormat::llama2:
      return "llama2";
    case ChatFormat::llama3:
      return "llama3";
  }
  return "?";
}

ChatTemplate chat_format_parse(const std::string& name) {
  ChatTemplate t;
  if (name == "chatml") {
    t.format = ChatFormat::chatml;
  } else if (name == "llama2") {
    t.format = ChatFormat::llama2;
  } else if (name == "llama3") {
    t.format = ChatFormat::llama3;
    t.bos = "<|begin_of_text|>";
    t.eos = "<|eot_id|>";
  } else {
    throw std::runtime_error("unknown chat format '" + name + "' (known: chatml, llama2, llama3)");
  }
  return t;
}

ChatTemplate chat_format_detect(const std::string& jinja) {
  if (contains(jinja, "<|start_header_id|>")) return chat_format_parse("llama3");
  if (contains(jinja, "[INST]")) return chat_format_parse("llama2");
  if (contains(jinja, "<|im_start|>")) {
    ChatTemplate t = chat_format_parse("chatml");
    // A template that inserts a system turn of its own when the conversation has none
    // (SmolLM2, Qwen2) spells it out as a literal.
    const std::string open = "<|im_start|>system\n";
    const size_t at = jinja.find(open);
    if (at != std::string::npos && contains(jinja, "!= 'system'")) {
      const size_t begin = at + open.size();
      const size_t end = jinja.find("<|im_end|>", begin);
      const std::string text = end == std::string::npos ? "" : jinja.substr(begin, end - begin);
      if (!text.empty() && !contains(text.c_str(), "{") && !contains(text.c_str(), "'")) t.default_system = text;
    }
    return t;
  }
  throw std::runtime_error("chat template is none of chatml, llama2, llama3: '" + jinja.substr(0, 120) + "...'");
}

std::string chat_render(const ChatTemplate& format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  switch (format.format) {
    case ChatFormat::chatml:
      return render_chatml(format, messages, add_generation_prompt);
    case ChatFormat::llama2:
      return render_llama2(format, messages);
    case ChatFormat::llama3:
      return render_llama3(format, messages, add_generation_prompt);
  }
  throw std::runtime_error("chat_render: unknown chat format");
}

}  // namespace kmoe
