// The prompt and scored targets of a K-shot example. Alpaca format (exact text):
//   "Below is an instruction that describes a task. Write a response that appropriately
//    completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
// and with a non-empty input the first sentence reads "... describes a task, paired with an
// input that provides further context. ..." and "### Input:\n{input}\n\n" precedes
// "### Response:\n". Choices are appended to the instruction as "\nA. text\nB. text...".
// Chat format: the same instruction (+ "\n\n" + input, + choices) as the one user message of
// the model's chat template, with the assistant turn opened. Targets: alpaca prepends one
// space (" B", " 42"); chat does not (the assistant turn starts fresh). The reasoning
// target is "{rationale} The answer is {answer}." with the same prefix rule.
#pragma once
#include <optional>
#include <string>

#include "data/tokenizers/chat_template.h"
#include "data/text/kshot.h"

namespace kmoe {

enum class PromptStyle { alpaca, chat };

PromptStyle prompt_style_parse(const std::string& name);  // "alpaca" | "chat"; throws otherwise

struct PromptFormat {
  PromptStyle style = PromptStyle::alpaca;
  std::optional<ChatTemplate> chat;  // required for PromptStyle::chat
};

// The instruction as shown to the model: instruction, then the lettered choices.
std::string prompt_question(const KshotExample& example);
std::string prompt_render(const PromptFormat& format, const KshotExample& example);
// The answer target for answer NLL / perplexity (for multiple choice: the letter).
std::string prompt_answer_target(const PromptFormat& format, const KshotExample& example);
// The reasoning target; equal to the answer target when the example has no rationale.
std::string prompt_reasoning_target(const PromptFormat& format, const KshotExample& example);
// A continuation for per-option log-likelihood: the choice text (lm-eval-harness style).
std::string prompt_choice_target(const PromptFormat& format, const std::string& choice);

}  // namespace kmoe
