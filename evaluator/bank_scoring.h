// Scores a LoRA bank on a K-shot set (METHOD.md §1.1): per adapter × example the answer NLL
// and perplexity, the reasoning perplexity, a greedy reply with its extracted prediction,
// and for multiple choice the per-option log-likelihoods; `kmoe score` runs it over MPI
// (units = adapter × chunk of examples in a WorkQueue, each unit journalled) into scores.h5.
// Prefix sharing: each prompt runs through the model once per (row, example); its KV cache
// serves the answer, the reasoning, every option and the greedy reply, so only continuation
// tokens are computed again (llama_prefill / llama_prefix_logprobs / llama_generate_prefilled).
// Determinism: a unit's batches depend only on its chunk (prompts sorted by length, then
// index, cut into --batch-size groups; each group's continuations likewise), never on which
// rank runs it or what ran before, so results do not depend on np, unit order or a kill and
// resume (on CPU fp32, same threads).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/text/kshot.h"
#include "data/text/prompt_format.h"
#include "data/tokenizers/tokenizer.h"
#include "evaluator/answer_extraction.h"
#include "model/linear_hook.h"
#include "model/llama.h"
#include "runtime/compute_dtype.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

struct ScoringOptions {
  PromptFormat prompt;
  AnswerSpec answer;              // format and regex; n_choices is set per example
  int64_t max_new_tokens = 64;    // 0: no generation (prediction "", correct 0)
  int64_t batch_size = 8;         // sequences per forward
  std::vector<int64_t> stop_ids;  // end generation
};

// One example tokenised once, for every adapter.
struct ScoringItem {
  std::vector<int64_t> prompt_ids;
  std::vector<int64_t> answer_ids;     // the answer target's tokens
  std::vector<int64_t> reasoning_ids;  // rationale + "The answer is X." (= answer_ids without rationale)
  bool has_rationale = false;
  std::vector<std::vector<int64_t>> choice_ids;  // per option, for multiple choice
  std::vector<int64_t> choice_chars;             // per option: characters of the continuation (acc_norm)
  int64_t gold_choice = -1;                      // index of the gold option, -1 if not multiple choice
  std::string gold;                              // normalised gold answer
  AnswerSpec answer;
};

// Groups of at most `batch` indices into `lengths`, sorted by (length, index): a fixed
// function of the list, so a unit's batches never depend on anything else.
std::vector<std::vector<size_t>> length_batches(const std::vector<int64_t>& lengths, int64_t batch);

// Throws naming path:line when an example's answer does not fit the answer format.
std::vector<ScoringItem> scoring_prepare(const std::vector<KshotExample>& examples, const Tokenizer& tokenizer,
                                         const ScoringOptions& options, const std::string& kshot_path);

struct ExampleScore {
  double nll = 0;            // -Σ log p(answer tokens)
  double ppl = 0;            // exp(nll / answer tokens)
  double ppl_reasoning = 0;  // exp(mean NLL of the reasoning target)
  int64_t correct = 0;       // generated prediction == gold
  std::string prediction;
  std::string reply;         // the greedy reply, decoded (prediction is extracted from it)
  int64_t ll_correct = -1;       // multiple choice: argmax option log-likelihood is gold (else -1)
  int64_t ll_norm_correct = -1;  // the same with log-likelihood per character
  std::vector<double> option_ll;  // multiple choice: Σ log p(option text) per option, in order
};

// Scores items with one model and hook (nullptr: the base). Deterministic for a given list.
std::vector<ExampleScore> scoring_run(const LlamaModel& model, const Tokenizer& tokenizer,
                                      const std::vector<ScoringItem>& items, const ScoringOptions& options,
                                      const LinearHook* hook);

struct BankEntry {
  std::string name;
  std::string path;
};
// DIR: every subfolder holding adapter_config.json, sorted by name; FILE: one adapter path
// per line (blank lines and '#' comments skipped). Throws naming the path.
std::vector<BankEntry> bank_list(const std::string& path);

// The options `kmoe score` and `kmoe eval` share, as the user gives them; the defaults are
// the command line's.
struct ScoringFlags {
  std::string prompt_format = "alpaca";  // alpaca or chat
  std::string answer_format = "exact";   // choice, yesno, number, exact or regex
  std::string answer_regex;              // PCRE2, group 1 = the answer (answer_format regex)
  int64_t max_new_tokens = 64;           // greedy reply length (0: no generation)
  int64_t batch_size = 8;                // sequences per forward
  int64_t chunk_size = 16;               // examples per work unit
  std::string device = "auto";           // auto, cpu or cuda
  std::string dtype = "auto";            // auto, float32 or bfloat16 (runtime/compute_dtype.h)
  int threads = 0;                       // CPU threads per rank (0: libtorch's default)
  std::string soft_prompt;               // PEFT prompt-tuning folder before every prompt ("": none)
};
struct ScoringCommandOptions {
  ScoringOptions scoring;
  int64_t chunk_size = 16;
  std::string device;       // "cpu" or "cuda" ("auto" resolved)
  ComputeDtype dtype;       // resolved for the device
  std::string soft_prompt;  // "" or the folder
};
// Checks and resolves them (and sets libtorch's thread count); throws UsageError "kmoe COMMAND: ...".
ScoringCommandOptions scoring_options_resolve(const ScoringFlags& flags, const std::string& command);

// `kmoe score`: the bank (and the base, and MoE files) on a K-shot set -> scores.h5.
// `kmoe eval --insights` (and `kmoe score`, `kmoe generate`): the options as the user gives them
// (PANDA, evaluator/panda.h).
struct InsightFlags {
  std::string pool;           // insights.h5 ("": none)
  int64_t k = 6;              // retrieved per query (the paper: 6 for classification, 1 interactive)
  std::string mode = "insights";
  std::string template_file;  // overrides insight_template_default(mode)
  std::string encoder_model;  // the pool's encoder at another path (it must be the same encoder)
  uint64_t seed = 0;          // --insight-mode random
};

struct ScoreOptions {
  std::string model;             // base model: HF folder or .gguf (required)
  std::string kshot;             // K-shot examples, JSONL (required)
  std::string bank;              // folder of PEFT adapters, or a file with one adapter path per line
  std::vector<std::string> moe;  // moe.h5 files, one row each, named after the file stem
  std::string output = "scores.h5";
  bool skip_bad_adapters = false;  // record adapters that fail to load as skipped
  bool force = false;              // rerun even if the artifact is complete
  ScoringFlags scoring;
  InsightFlags insights;  // PANDA: each K-shot question with its nearest pool rows before it
};
StageOutcome score_stage(const MpiWorld& world, const ScoreOptions& options);

}  // namespace kmoe
