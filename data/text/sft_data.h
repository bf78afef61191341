// Supervised fine-tuning examples: token ids with the loss on the response only. One JSONL
// file may mix record kinds; each record is recognised by its fields: `messages` (chat),
// `text` (plain LM, loss on every token), `output` (open Alpaca) or `answer` (K-shot, via
// data/text/kshot.h). Prompts are rendered by data/text/prompt_format.h with the same --prompt-format
// as scoring and evaluation, so training and scoring see the same prompt text. Prompt and
// response are tokenised separately, as the scorer does, so the prompt/response boundary is
// a token boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/text/prompt_format.h"
#include "data/tokenizers/tokenizer.h"

namespace kmoe {

struct SftExample {
  std::vector<int64_t> tokens;  // prompt then response
  int64_t n_prompt = 0;         // tokens[n_prompt:] are the loss targets (>= 1 of them)
  std::string where;            // "FILE:LINE"
  int64_t source = 0;           // the index of FILE in sft_load's `files`
  int64_t response_tokens() const { return static_cast<int64_t>(tokens.size()) - n_prompt; }
};

struct SftDataOptions {
  PromptFormat prompt;     // alpaca or chat (chat needs prompt.chat)
  int64_t max_len = 1024;  // prompt + response tokens; the response is cut, the prompt kept
  int64_t eos_id = -1;     // appended to every response
  // Template for `messages` records when the prompt style is alpaca (the model's own).
  std::optional<ChatTemplate> chat_for_messages;
};

struct SftDataStats {
  int64_t records = 0;
  int64_t truncated = 0;                 // response cut to fit max_len
  int64_t dropped = 0;                   // prompt alone reaches max_len: no response token left
  std::vector<int64_t> source_examples;  // examples trained on per file (after sft_sample_sources)
};

// The end-of-sequence id a response ends with: for the chat style, the first of the
// template's end-of-turn tokens (chat_turn_end_tokens) the vocabulary has, as that ends an
// assistant turn; otherwise the tokenizer's EOS, else the config's first eos_token_id. Throws
// when there is none.
int64_t sft_eos_id(const Tokenizer& tokenizer, const std::vector<int64_t>& config_eos_ids, const PromptFormat& prompt);

// Every record of every file, in file then line order. Throws "FILE:LINE: ..." for invalid
// JSON, a record of no known kind, or empty fields.
std::vector<SftExample> sft_load(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                                 const SftDataOptions& options, SftDataStats* stats = nullptr);

// One --data argument: FILE, or FILE:FRACTION to train on that share of the file's examples
// (DMT's data mixtures, METHOD.md §3), FRACTION being a/b or a decimal in (0, 1]. An
// argument that names an existing file is that path, colon or not. Throws naming the
// argument.
struct SftSource {
  std::string path;
  double fraction = 1.0;
};
SftSource sft_source_parse(const std::string& arg);

// Keeps, of each source s, max(1, round(fractions[s] × its examples)) examples (all when the
// fraction is 1; none of an empty source), drawn without replacement by a mt19937_64
// seeded from (seed, s) and kept in their original order: the same subset on every rank and
// run. kept[s] = the examples kept of source s.
std::vector<SftExample> sft_sample_sources(std::vector<SftExample> all, const std::vector<double>& fractions,
                                           uint64_t seed, std::vector<int64_t>* kept = nullptr);

}  // namespace kmoe
