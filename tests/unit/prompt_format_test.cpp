#include "data/text/prompt_format.h"

#include <gtest/gtest.h>

namespace kmoe {
namespace {

KshotExample mc_example() {
  KshotExample ex;
  ex.instruction = "Which is a fruit?";
  ex.choices = {"apple", "stone"};
  ex.answer = "A";
  return ex;
}

TEST(PromptFormat, AlpacaListsChoicesAndPrefixesTargetsWithASpace) {
  const PromptFormat f;
  EXPECT_EQ(prompt_render(f, mc_example()),
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nWhich is a fruit?\nA. apple\nB. stone\n\n### Response:\n");
  EXPECT_EQ(prompt_answer_target(f, mc_example()), " A");
  EXPECT_EQ(prompt_reasoning_target(f, mc_example()), " A");  // no rationale: the answer
  EXPECT_EQ(prompt_choice_target(f, "stone"), " stone");
}

TEST(PromptFormat, AlpacaWithInputAndRationale) {
  KshotExample ex;
  ex.instruction = "Add.";
  ex.input = "1 and 2";
  ex.answer = "3";
  ex.rationale = "1 + 2 = 3.";
  const PromptFormat f;
  EXPECT_EQ(prompt_render(f, ex),
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd.\n\n### "
            "Input:\n1 and 2\n\n### Response:\n");
  EXPECT_EQ(prompt_reasoning_target(f, ex), " 1 + 2 = 3. The answer is 3.");
}

TEST(PromptFormat, ChatUsesTheModelTemplateAndNoSpace) {
  PromptFormat f;
  f.style = PromptStyle::chat;
  EXPECT_THROW(prompt_render(f, mc_example()), std::invalid_argument);  // no template
  f.chat = chat_format_parse("chatml");
  EXPECT_EQ(prompt_render(f, mc_example()),
            "<|im_start|>user\nWhich is a fruit?\nA. apple\nB. stone<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(prompt_answer_target(f, mc_example()), "A");
  EXPECT_EQ(prompt_style_parse("chat"), PromptStyle::chat);
  EXPECT_THROW(prompt_style_parse("vicuna"), std::invalid_argument);
}

}  // namespace
}  // namespace kmoe
