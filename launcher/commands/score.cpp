// `kmoe score` on the command line, and the options score and eval share.
#include "evaluator/bank_scoring.h"
#include "launcher/commands.h"

namespace kmoe {

void scoring_flags_add(po::options_description& d, const ScoringFlags& def) {
  d.add_options()("prompt-format", po::value<std::string>()->default_value(def.prompt_format), "alpaca or chat")(
      "answer-format", po::value<std::string>()->default_value(def.answer_format),
      "choice, yesno, number, exact or regex")("answer-regex", po::value<std::string>(),
                                               "PCRE2 regex for --answer-format regex (group 1 = answer)")(
      "max-new-tokens", po::value<int64_t>()->default_value(def.max_new_tokens),
      "greedy reply length (0: no generation)")("batch-size", po::value<int64_t>()->default_value(def.batch_size),
                                                "sequences per forward")(
      "chunk-size", po::value<int64_t>()->default_value(def.chunk_size), "examples per work unit")(
      "device", po::value<std::string>()->default_value(def.device), "auto, cpu or cuda")(
      "dtype", po::value<std::string>()->default_value(def.dtype),
      "auto, float32 or bfloat16: the precision of weights and activations (auto: bfloat16 on\n"
      "cuda, float32 on the CPU; bfloat16 pays on CPUs with AVX512-BF16 or AMX)")(
      "threads", po::value<int>(), "CPU threads per rank (default: libtorch's)")(
      "soft-prompt", po::value<std::string>()->value_name("DIR"),
      "a soft prompt (PEFT prompt-tuning folder, kmoe train --mode prompt) put before\n"
      "every prompt, for every row (ProMoT: use it for tasks of its format only)");
}

ScoringFlags scoring_flags(const po::variables_map& vm) {
  ScoringFlags f;
  cli_get(vm, "prompt-format", f.prompt_format);
  cli_get(vm, "answer-format", f.answer_format);
  cli_get(vm, "answer-regex", f.answer_regex);
  cli_get(vm, "max-new-tokens", f.max_new_tokens);
  cli_get(vm, "batch-size", f.batch_size);
  cli_get(vm, "chunk-size", f.chunk_size);
  cli_get(vm, "device", f.device);
  cli_get(vm, "dtype", f.dtype);
  cli_get(vm, "threads", f.threads);
  cli_get(vm, "soft-prompt", f.soft_prompt);
  return f;
}

ScoreOptions score_options(const po::variables_map& vm) {
  ScoreOptions o;
  cli_get(vm, "model", o.model);
  cli_get(vm, "kshot", o.kshot);
  cli_get(vm, "bank", o.bank);
  cli_get(vm, "moe", o.moe);
  cli_get(vm, "output", o.output);
  cli_get(vm, "skip-bad-adapters", o.skip_bad_adapters);
  cli_get(vm, "force", o.force);
  o.scoring = scoring_flags(vm);
  o.insights = insight_flags(vm);
  return o;
}

Subcommand score_subcommand() {
  return {"score",
          "Score the base model, a LoRA bank and mixtures on a K-shot set: NLL, perplexities, accuracy\n"
          "-> scores.h5 (without --bank or --moe, the base alone)",
          [](po::options_description& d, po::positional_options_description&) {
            const ScoreOptions def;
            d.add_options()("model", po::value<std::string>()->required()->value_name("PATH"),
                            "base model: HF folder or .gguf")(
                "bank", po::value<std::string>()->value_name("DIR|FILE"),
                "folder of PEFT adapters, or a file with one adapter path per line (relative paths\n"
                "resolve against the file's folder)")(
                "moe", po::value<std::vector<std::string>>()->composing()->value_name("FILE"),
                "a mixture of LoRA experts (moe.h5), scored as one more row named after the file stem; repeatable")(
                "kshot", po::value<std::string>()->required()->value_name("FILE"), "K-shot examples (JSONL)")(
                "output", po::value<std::string>()->default_value(def.output), "the scores artifact")(
                "skip-bad-adapters", po::bool_switch(), "record adapters that fail to load as skipped")(
                "force", po::bool_switch(), "rerun even if the artifact is complete");
            scoring_flags_add(d, def.scoring);
            insight_flags_add(d, def.insights);
          },
          [](const po::variables_map& vm) { return stage_exit(score_stage(mpi_world(), score_options(vm))); }};
}

}  // namespace kmoe
