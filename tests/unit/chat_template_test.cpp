#include "data/tokenizers/chat_template.h"

#include <gtest/gtest.h>

namespace kmoe {
namespace {

const char* const kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, DetectsSmolLM2AndItsDefaultSystemMessage) {
  const ChatTemplate t = chat_format_detect(kSmolLM2Template);
  EXPECT_EQ(t.format, ChatFormat::chatml);
  EXPECT_EQ(t.default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(chat_render(t, {{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat_render(t, {{"system", "S"}, {"user", "Hi"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, PlainChatmlHasNoDefaultSystem) {
  const ChatTemplate t = chat_format_detect("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}");
  EXPECT_EQ(t.default_system, "");
  EXPECT_EQ(chat_render(t, {{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama2FoldsSystemIntoFirstTurn) {
  const ChatTemplate t = chat_format_detect("... '[INST] ' + content.strip() + ' [/INST]' ...");
  EXPECT_EQ(t.format, ChatFormat::llama2);
  EXPECT_EQ(chat_render(t, {{"system", "S"}, {"user", " Q1 "}, {"assistant", "A1"}, {"user", "Q2"}}, true),
            // Meta's template strips after prepending the system block: Q1's leading space stays
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
}

TEST(ChatTemplate, Llama3TrimsContentAndOpensAssistantTurn) {
  const ChatTemplate t = chat_format_detect("{{ '<|start_header_id|>' + message['role'] }}");
  EXPECT_EQ(t.format, ChatFormat::llama3);
  EXPECT_EQ(chat_render(t, {{"user", " Hi \n"}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, BadInputIsRejected) {
  EXPECT_THROW(chat_format_detect("{{ messages }}"), std::runtime_error);
  EXPECT_THROW(chat_format_parse("alpaca"), std::runtime_error);
  const ChatTemplate llama2 = chat_format_parse("llama2");
  EXPECT_THROW(chat_render(llama2, {{"user", "a"}, {"user", "b"}}, false), std::runtime_error);
  EXPECT_THROW(chat_render(llama2, {{"assistant", "a"}}, false), std::runtime_error);
  EXPECT_EQ(std::string(chat_format_name(chat_format_parse("llama3").format)), "llama3");
}

}  // namespace
}  // namespace kmoe
