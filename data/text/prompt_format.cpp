// See prompt_format.h. The chat path renders through chat_render, so the prompt string is
// exactly what the model's own template would give (BOS text included): encode it with
// add_special = false.
#include "data/text/prompt_format.h"

#include <stdexcept>

namespace kmoe {

namespace {

std::string target_prefix(const PromptFormat& format) {
  return format.style == PromptStyle::alpaca ? " " : "";
}

}  // namespace

PromptStyle prompt_style_parse(const std::string& name) {
  if (name == "alpaca") return PromptStyle::alpaca;
  if (name == "chat") return PromptStyle::chat;
  throw std::invalid_argument("prompt format must be alpaca or chat, not '" + name + "'");
}

std::string prompt_question(const KshotExample& example) {
  std::string q = example.instruction;
  for (size_t i = 0; i < example.choices.size(); ++i) {
    q.append("\n").append(kshot_choice_letter(i)).append(". ").append(example.choices[i]);
  }
  return q;
}

std::string prompt_render(const PromptFormat& format, const KshotExample& example) {
  const std::string question = prompt_question(example);
  if (format.style == PromptStyle::chat) {
    if (!format.chat) throw std::invalid_argument("prompt format chat: the model has no chat template kmoe knows");
    const std::string user = example.input.empty() ? question : question + "\n\n" + example.input;
    return chat_render(*format.chat, {{"user", user}}, /*add_generation_prompt=*/true);
  }
  if (example.input.empty()) {
    return "Below is an instruction that describes a task. Write a response that appropriately completes the "
           "request.\n\n### Instruction:\n" +
           question + "\n\n### Response:\n";
  }
  return "Below is an instruction that describes a task, paired with an input that provides further context. "
         "Write a response that appropriately completes the request.\n\n### Instruction:\n" +
         question + "\n\n### Input:\n" + example.input + "\n\n### Response:\n";
}

std::string prompt_answer_target(const PromptFormat& format, const KshotExample& example) {
  return target_prefix(format) + example.answer;
}

std::string prompt_reasoning_target(const PromptFormat& format, const KshotExample& example) {
  if (example.rationale.empty()) return prompt_answer_target(format, example);
  return target_prefix(format) + example.rationale + " The answer is " + example.answer + ".";
}

std::string prompt_choice_target(const PromptFormat& format, const std::string& choice) {
  return target_prefix(format) + choice;
}

}  // namespace kmoe
